"""Every answer the machine can show is checked against the real Postfix 3.7 on this machine.

Offline kinds (postconf -d defaults, parameter names, paths, manual pages, command output) run against
the installed package; smtp_reply blocks run real SMTP dialogs against the lab's private Postfix
(fixture ``postfix_lab``), grouped by TLS level so the instance is reloaded once per group.
A question whose right answer names a parameter, a reply, a Postfix path or command but carries no
verify block for it fails ``test_every_checkable_fact_is_verified``.
"""

from __future__ import annotations

import time
from collections import defaultdict

import pytest

from quizzes.bank import load_bank
from quizzes.model import Question, SmtpReply
from quizzes.verify import (
    check_offline,
    judge_reply,
    missing_verification,
    postconf_defaults,
    smtp_dialog,
)

BANK = load_bank()
OFFLINE = [q for q in BANK if any(v.kind != "smtp_reply" for v in q.verify)]


@pytest.mark.parametrize("q", OFFLINE, ids=[q.id for q in OFFLINE])
def test_offline_facts(q: Question):
    problems = [p for v in q.verify if v.kind != "smtp_reply" and (p := check_offline(v))]
    assert not problems, f"{q.source}:{q.line}: {q.id}: " + "; ".join(problems)


def test_every_checkable_fact_is_verified():
    params = set(postconf_defaults())
    assert "smtpd_tls_security_level" in params
    missing = {f"{q.source}:{q.line}: {q.id}": m for q in BANK if (m := missing_verification(q, params))}
    assert not missing, missing


def test_the_coverage_rule_catches_an_unverified_parameter():
    q = Question(id="x-q", type="fill", objectives=["lesson-2"], area="tls-config", difficulty=1, prompt="p",
                 answers=["smtpd_tls_loglevel"], explanation="e", references=["r"])
    assert missing_verification(q, set(postconf_defaults()))
    q2 = q.model_copy(update={"answers": ["530"], "tags": ["reply-codes"]})
    assert missing_verification(q2, set(postconf_defaults()))


def test_bank_has_live_checks():
    assert sum(isinstance(v, SmtpReply) for q in BANK for v in q.verify) >= 20


def _live_groups() -> dict[tuple, list[tuple[Question, SmtpReply]]]:
    groups: dict[tuple, list[tuple[Question, SmtpReply]]] = defaultdict(list)
    for q in BANK:
        for v in q.verify:
            if isinstance(v, SmtpReply):
                groups[(v.level, tuple(sorted(v.settings.items())))].append((q, v))
    return groups


def _run_one(settings, v: SmtpReply) -> str | None:
    """Run a dialog; retry briefly, since smtpd processes from before a reload may still answer once."""
    problem = None
    for _attempt in range(10):
        mark = settings.log_file.stat().st_size if settings.log_file.exists() else 0
        lines = smtp_dialog(settings.host, settings.smtp_port, v.dialog, domain=settings.domain)
        problem = judge_reply(v, lines)
        if problem is None and v.log_contains:
            problem = f"maillog never showed {v.log_contains!r}"
            for _ in range(20):
                with open(settings.log_file, "rb") as fh:
                    fh.seek(mark)
                    if v.log_contains in fh.read().decode("utf-8", "replace"):
                        problem = None
                        break
                time.sleep(0.1)
        if problem is None:
            return None
        time.sleep(0.3)
    return problem


@pytest.mark.postfix
def test_smtp_replies_against_real_postfix(postfix_lab):
    from labsim import lab, postfix

    settings = postfix_lab
    main_cf = settings.config_dir / "main.cf"
    original = main_cf.read_text()
    failures: list[str] = []
    try:
        for (level, extra), items in sorted(_live_groups().items()):
            main_cf.write_text(original)
            edits = [f"smtpd_tls_security_level={level}"] + [f"{k}={val}" for k, val in extra]
            postfix.postconf(settings, "-e", *edits, check=True)
            lab.reload(settings)
            time.sleep(0.3)
            for q, v in items:
                problem = _run_one(settings, v)
                if problem:
                    failures.append(f"{q.source}:{q.line}: {q.id} (level {level}, {v.dialog}): {problem}")
    finally:
        main_cf.write_text(original)
        lab.reload(settings)
    assert not failures, "\n".join(failures)
