"""Differential testing: generated SMTP sessions against the real Postfix 3.7.11 and the simulator.

Sessions come from the command grammar (``tests.sim_fixtures.session_strategy``: EHLO/HELO, MAIL/RCPT with
and without parameters, DATA with dot-stuffing, bare LF and long lines, BDAT, RSET, NOOP, VRFY, ETRN,
XCLIENT/XFORWARD, AUTH, STARTTLS with the handshake, pipelining, malformed lines); configurations come from
a matrix (TLS level, certificate state, relay settings, size limit, ``smtpd_forbid_bare_newline``). Each
session runs on both with the same main.cf; the replies, the smtpd/cleanup log lines and the messages
delivered into the lab mailbox must be equal (queue ids, dates, stamps and pids normalised). What is known
to differ is in ``labsim/sim/known_differences.py`` and kept out of the generator there; failing examples are kept in ``tests/corpus/`` and replayed by
``test_corpus_replays``. CI budget: ``SIM_DIFF_EXAMPLES`` sessions per configuration (default 30, ten
configurations: about 300 sessions); ``bench/bench_sim_differential.py`` runs a long one.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings as hsettings

from labsim.sim import known_differences
from tests.sim_fixtures import pair_fixture  # noqa: F401  (the 'pair' fixture)
from tests.sim_fixtures import Pair, diff, run_both, session_strategy

pytestmark = [pytest.mark.postfix, pytest.mark.timeout(600)]

if shutil.which("postfix") is None:
    pytest.skip("the real Postfix is not installed", allow_module_level=True)

CORPUS = Path(__file__).parent / "corpus"
EXAMPLES = int(os.environ.get("SIM_DIFF_EXAMPLES", "30"))
CONFIGS = known_differences.config_matrix(limit=10)


def check_session(pair: Pair, config: dict, steps: list) -> None:
    got = run_both(pair, steps)
    (want_r, want_l, want_m), (sim_r, sim_l, sim_m) = got["postfix"], got["sim"]
    example = json.dumps({"config": config, "steps": steps})
    assert want_r == sim_r, diff("replies", want_r, sim_r) + f"\nexample: {example}"
    assert want_l == sim_l, diff("smtpd log", want_l, sim_l) + f"\nexample: {example}"
    assert want_m == sim_m, diff("delivered messages", [ln for m in want_m for ln in [*m.splitlines(), "----"]],
                                 [ln for m in sim_m for ln in [*m.splitlines(), "----"]]) + f"\nexample: {example}"


@pytest.mark.parametrize("config", CONFIGS, ids=[known_differences.config_id(c) for c in CONFIGS])
def test_generated_sessions_match_postfix(pair: Pair, config: dict) -> None:
    pair.configure(**config)

    @hsettings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
               suppress_health_check=list(HealthCheck))
    @given(session_strategy().filter(lambda steps: not known_differences.excluded(config, steps)))
    def sessions(steps: list) -> None:
        check_session(pair, config, steps)

    sessions()


def _corpus() -> list[Path]:
    return sorted(CORPUS.glob("*.json"))


@pytest.mark.parametrize("path", _corpus(), ids=[p.stem for p in _corpus()])
def test_corpus_replays(pair: Pair, path: Path) -> None:
    """Every difference found once (fixed since) stays fixed."""
    case = json.loads(path.read_text())
    pair.configure(**case["config"])
    check_session(pair, case["config"], case["steps"])


#: main.cf edits a learner can make that bring back Postfix's backwards-compatible defaults (None: the
#: parameter is removed, ``postconf -X``), with a session that meets each of them.
COMPAT_STEPS = [["cmd", "EHLO h"], ["cmd", "MAIL FROM:<a@b> SMTPUTF8"], ["cmd", "MAIL FROM:<caf\xe9@b>"],
                ["cmd", "RCPT TO:<caf\xe9@lab.itpro.tv>"], ["cmd", "RCPT TO:<student@lab.itpro.tv>"],
                ["cmd", "RCPT TO:<b@remote.example>"], ["cmd", "VRFY"], ["data", "hi"], ["cmd", "QUIT"]]
COMPAT_CASES = {
    # no compatibility_level (0): smtputf8_enable = no, the recipient list first with the stand-in relay list
    "level-0-recipient-list": dict(compatibility_level=None, smtpd_relay_restrictions=None,
                                   smtpd_recipient_restrictions="permit_mynetworks, reject_unauth_destination"),
    "level-0-warn-if-reject": dict(compatibility_level=None, smtpd_relay_restrictions=None,
                                   smtpd_recipient_restrictions="warn_if_reject reject_unauth_destination, "
                                                                "defer_if_permit"),
    "level-0-relay-list-set": dict(compatibility_level=None, smtpd_recipient_restrictions=None,
                                   smtpd_relay_restrictions="permit_mynetworks permit_sasl_authenticated "
                                                            "defer_unauth_destination"),
    "level-0-mynetworks-utf8-set": dict(compatibility_level=None, smtpd_relay_restrictions=None,
                                        smtpd_recipient_restrictions="permit_mynetworks, reject_unauth_destination",
                                        mynetworks="127.0.0.0/8", smtputf8_enable="yes"),
    # level 2: only smtpd_relay_before_recipient_restrictions = no is left (and its note)
    "level-2-recipient-list": dict(compatibility_level="2", smtpd_relay_restrictions="",
                                   smtpd_recipient_restrictions="reject_unauth_destination", mynetworks=""),
}


def test_backwards_compatible_defaults_match_postfix(pair: Pair) -> None:
    """compatibility_level below 1 (or below 3.6): the stand-in relay restrictions and the notes Postfix
    logs for them, smtputf8_enable = no (no SMTPUTF8 in EHLO, ``555`` for the parameter, VRFY's syntax
    text, the note for a non-ASCII address), warn_if_reject's ``reject_warning`` line; on both backends."""
    try:
        for name, params in COMPAT_CASES.items():
            pair.restart(**params)
            time.sleep(1)
            check_session(pair, {"case": name, **{k: str(v) for k, v in params.items()}}, COMPAT_STEPS)
    finally:  # back to the lab's own main.cf for the rest of the module
        pair.restart(compatibility_level="3.6", smtpd_relay_restrictions=known_differences.RELAY_SETTINGS["lab"][
            "smtpd_relay_restrictions"], smtpd_recipient_restrictions=None, mynetworks="", smtputf8_enable=None,
            smtpd_relay_before_recipient_restrictions=None)
