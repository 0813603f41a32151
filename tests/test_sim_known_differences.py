"""Each difference listed in labsim/sim/known_differences.py still differs exactly as described.

If the simulator is fixed (or Postfix changes), the pin fails and the entry must leave the list; if a new
entry has no pin here, ``test_every_difference_is_pinned`` fails.
"""

from __future__ import annotations

import shutil
import time

import pytest

from labsim.sim import known_differences
from tests.sim_fixtures import pair_fixture  # noqa: F401  (the 'pair' fixture)
from tests.sim_fixtures import Pair, play_session, run_both, wait_for_log

pytestmark = [pytest.mark.postfix, pytest.mark.timeout(300)]

if shutil.which("postfix") is None:
    pytest.skip("the real Postfix is not installed", allow_module_level=True)

RCPT = "student@lab.itpro.tv"




def pin_soft_error_sleep(pair: Pair) -> None:
    pair.configure(smtpd_soft_error_limit="3")
    steps = [["cmd", "EHLO h"], *[["cmd", "FOO"]] * 5, ["cmd", "QUIT"]]
    durations = {}
    for name, s in (("postfix", pair.real), ("sim", pair.sim)):
        start = time.monotonic()
        out = play_session(s.smtp_port, steps)
        durations[name] = time.monotonic() - start
        assert out.count("< 500 5.5.2 Error: command not recognized") == 5, out
    pair.configure(smtpd_soft_error_limit="10")
    assert durations["postfix"] >= 2.0 > durations["sim"], durations  # Postfix sleeps 1 s a reply past 3


def pin_size_limit_overhead(pair: Pair) -> None:
    pair.configure(message_size_limit="2000")
    steps = [["cmd", "EHLO h"], ["cmd", "MAIL FROM:<>"], ["cmd", f"RCPT TO:<{RCPT}>"], ["data", "x" * 1500],
             ["cmd", "QUIT"]]
    try:
        real = play_session(pair.real.smtp_port, steps)
        sim = play_session(pair.sim.smtp_port, steps)
        assert "< 552 5.3.4 Error: message file too big" in real, real
        assert any(line.startswith("< 250 2.0.0 Ok: queued as") for line in sim), sim
        assert known_differences._near_size_limit({"message_size_limit": "2000"}, steps)
    finally:
        pair.configure(message_size_limit="10240000")


def pin_tls_library_problem(pair: Pair) -> None:
    marks = [s.log_file.stat().st_size for s in (pair.real, pair.sim)]
    pair.restart(smtpd_tls_cert_file="{ssl}/no-such-cert.pem")
    try:
        texts = []
        for s, mark in zip((pair.real, pair.sim), marks):
            play_session(s.smtp_port, [["cmd", "QUIT"]])
            texts.append(wait_for_log(s, "disabling TLS support")[mark:])
        assert "disabling TLS support" in texts[0] and "disabling TLS support" in texts[1]
        assert "TLS library problem" in texts[0] and "TLS library problem" not in texts[1]
    finally:
        pair.restart(smtpd_tls_cert_file="{ssl}/ssl-cert-snakeoil.pem")


def pin_append_dot_mydomain(pair: Pair) -> None:
    pair.configure(append_dot_mydomain="yes")
    steps = [["cmd", "EHLO h"], ["cmd", "MAIL FROM:<a@b>"], ["cmd", "RCPT TO:<student@lab>"], ["cmd", "QUIT"]]
    try:
        real = play_session(pair.real.smtp_port, steps)
        sim = play_session(pair.sim.smtp_port, steps)
        assert "< 250 2.1.5 Ok" in real, real  # student@lab.itpro.tv
        assert "< 454 4.7.1 <student@lab>: Relay access denied" in sim, sim  # refused, never open
        assert known_differences.excluded({"append_dot_mydomain": "yes"}, steps)
    finally:
        pair.configure(append_dot_mydomain="no")


def pin_bdat_error_keeps_recipients(pair: Pair) -> None:
    failed = [["cmd", "EHLO h"], ["cmd", "MAIL FROM:<>"], ["cmd", f"RCPT TO:<{RCPT}>"], ["bdat", "", False],
              ["bdat", "", True]]  # 551 Null BDAT request, 551 Discarded 0 bytes after earlier error
    # no crash: the next message's Received: header is written as for two recipients (no "for <x>")
    got = run_both(pair, [*failed, ["cmd", "MAIL FROM:<a@b>"], ["cmd", "RCPT TO:<x@lab.itpro.tv>"],
                          ["data", "Subject: z\r\n\r\nhi"], ["cmd", "QUIT"]])
    real_message, sim_message = got["postfix"][2], got["sim"][2]
    assert len(real_message) == len(sim_message) == 1, got
    assert "\tfor <x@lab.itpro.tv>; <DATE>" in sim_message[0] and "for <x@" not in real_message[0], got
    crash = [*failed, ["cmd", "MAIL FROM:<a@b>"], ["data", "hi"]]
    assert known_differences.excluded({}, crash)
    mark = pair.real.log_file.stat().st_size
    try:
        real = play_session(pair.real.smtp_port, crash)
        sim = play_session(pair.sim.smtp_port, crash)
        assert real[-1] == "[closed]" and "< 354 End data with <CR><LF>.<CR><LF>" not in real, real
        assert sim[-1] == "< 554 5.5.1 Error: no valid recipients", sim
        log = wait_for_log(pair.real, "killed by signal 11")[mark:]
        assert "/smtpd pid " in log and "killed by signal 11" in log, log
        # the differential harness says so (and starts both over) instead of timing out in later sessions
        with pytest.raises(AssertionError, match="smtpd crashed"):
            run_both(pair, crash)
        assert play_session(pair.real.smtp_port, [["cmd", "QUIT"]])[-1] == "< 221 2.0.0 Bye"
    finally:
        pair.restart()  # an smtpd that crashes in its first session leaves the master throttling for 60 s


def pin_header_address_rewrite(pair: Pair) -> None:
    steps = [["cmd", "EHLO h"], ["cmd", "MAIL FROM:<>"], ["cmd", f"RCPT TO:<{RCPT}>"],
             ["data", "From: <a@b>\r\n folded\r\nTo: x, y@z\r\nCc: <c@d>\r\n\r\nbody"], ["cmd", "QUIT"]]
    assert known_differences.excluded({}, steps)
    got = run_both(pair, steps)
    (real,), (sim,) = got["postfix"][2], got["sim"][2]
    assert "\nFrom: <a@b>, folded@lab.itpro.tv\nTo: x@lab.itpro.tv, y@z\nCc: <c@d>\n" in real, real
    assert "\nFrom: <a@b>\n folded\nTo: x, y@z\nCc: <c@d>\n" in sim, sim


PINS = {
    "soft-error-sleep": pin_soft_error_sleep,
    "size-limit-overhead": pin_size_limit_overhead,
    "tls-library-problem": pin_tls_library_problem,
    "append-dot-mydomain": pin_append_dot_mydomain,
    "bdat-error-keeps-recipients": pin_bdat_error_keeps_recipients,
    "header-address-rewrite": pin_header_address_rewrite,
}


def test_every_difference_is_pinned() -> None:
    assert set(PINS) == {d.name for d in known_differences.DIFFERENCES}


@pytest.mark.parametrize("name", list(PINS))
def test_difference_still_differs(pair: Pair, name: str) -> None:
    PINS[name](pair)
