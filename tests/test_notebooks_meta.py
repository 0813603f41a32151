"""The notebooks' structure, without running them (nbval runs them: notebooks/nbval.sh, scripts/test.sh).

Every lesson notebook states objectives and time, has exercises with a check and a folded solution, ends
with key points and a pinned quiz, never skips a cell, and stores outputs that were really produced and
carry no machine-specific paths or ports. The sanitizer file parses the way nbval reads it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from labsim import checks, notebook
from labsim.settings import PORTS
from quizzes import bank as qbank
from quizzes.bank import load_bank

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("[0-9][0-9]-*.ipynb"))
DEFAULT_PORTS = {str(d) for _a, _v, d in PORTS}


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def src(cell: dict) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def output_text(cell: dict) -> str:
    parts = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            t = o.get("text", "")
            parts.append("".join(t) if isinstance(t, list) else t)
        for v in (o.get("data") or {}).values():
            parts.append("".join(v) if isinstance(v, list) else (v if isinstance(v, str) else json.dumps(v)))
    return "\n".join(parts)


def test_five_to_eight_notebooks_numbered_in_order():
    assert 5 <= len(NOTEBOOKS) <= 8, [p.name for p in NOTEBOOKS]
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(1, len(NOTEBOOKS) + 1)]


def test_lab_states_chain():
    """Each notebook expects the state the one before leaves (and sets it up itself when run alone)."""
    states = [load(p)["metadata"]["course"]["lab_state"] for p in NOTEBOOKS]
    for before, after in zip(states, states[1:]):
        assert after["expects"] == before["leaves"], (before, after)
    for p, st in zip(NOTEBOOKS[1:], states[1:]):
        code = [src(c) for c in load(p)["cells"] if c["cell_type"] == "code"]
        assert f'setup("{st["expects"]}")' in code[0], f"{p.name}: first code cell must call setup({st['expects']!r})"
        assert st["expects"] in notebook.STAGES


def test_first_notebook_brings_the_lab_up():
    code = [src(c) for c in load(NOTEBOOKS[0])["cells"] if c["cell_type"] == "code"]
    assert "aim_kernel()" in code[0]
    assert code[1].strip() == "!labsim up"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
class TestNotebook:
    def test_metadata_for_the_site(self, path):
        meta = load(path)["metadata"]
        course = meta["course"]
        data = json.loads(qbank.to_json())
        assert course["objectives"] and set(course["objectives"]) <= set(data["objectives"])
        assert course["areas"] and set(course["areas"]) <= set(data["areas"])
        assert course["time"]["teaching"] > 0 and course["time"]["exercises"] > 0
        assert len(course["instructor_notes"]) > 40
        assert meta["kernelspec"]["name"] == "python3"
        assert "widgets" not in meta  # random model ids; the site is offline

    def test_opens_with_objectives_and_time(self, path):
        cells = load(path)["cells"]
        first = src(cells[0])
        assert re.match(rf"# {int(path.name[:2])}\. \S", first), first[:60]
        for word in ("**Time:**", "**Questions**", "**Objectives**", "**Before:**"):
            assert word in first, f"{path.name}: first cell lacks {word}"
        course = load(path)["metadata"]["course"]
        assert f"{course['time']['teaching']} min teaching, {course['time']['exercises']} min exercises" in first

    def test_ends_with_key_points_and_a_pinned_quiz(self, path):
        cells = load(path)["cells"]
        assert cells[-1]["cell_type"] == "code"
        quiz = src(cells[-1])
        m = re.search(r"show_quiz\(ids=\[(.*?)\]\)", quiz, re.S)
        assert m, "the last cell must be show_quiz(ids=[...]) (pinned ids keep the stored output stable)"
        ids = re.findall(r'"([^"]+)"', m.group(1))
        assert 3 <= len(ids) <= 6
        assert [q.id for q in load_bank().select(ids=ids)] == ids
        assert "Quiz:" in output_text(cells[-1])
        assert src(cells[-2]).startswith("## Key points")

    def test_exercises_have_a_check_and_a_folded_solution(self, path):
        cells = load(path)["cells"]
        heads = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and src(c).startswith("## ")]
        exercises = [i for i in heads if src(cells[i]).startswith("## Exercise")]
        assert exercises, f"{path.name} has no '## Exercise' cell"
        for i in exercises:
            assert re.search(r"\(\d+ min\)", src(cells[i]).splitlines()[0]), "an exercise says how long it takes"
            end = min([h for h in heads if h > i] or [len(cells)])
            block = cells[i:end]
            text = "\n".join(src(c) for c in block if c["cell_type"] == "markdown")
            assert "<details>" in text and "<summary>" in text and "</details>" in text, "solution must be folded"
            code = [c for c in block if c["cell_type"] == "code"]
            empty = [k for k, c in enumerate(code) if not src(c).strip()]
            assert empty, f"{path.name}: an exercise needs an empty cell for the learner's answer"
            after = src(code[empty[0] + 1]) if empty[0] + 1 < len(code) else ""
            step = re.search(r'check\("([^"]+)"\)|labsim check (\S+)', after)
            assert step, f"{path.name}: the cell after the answer cell must check it"
            name = step.group(1) or step.group(2)
            assert name in checks.REGISTRY, name

    def test_no_skipped_cells_and_outputs_stored(self, path):
        nb = load(path)
        for c in nb["cells"]:
            text = src(c)
            assert "NBVAL_SKIP" not in text and "NBVAL_IGNORE_OUTPUT" not in text
            assert "nbval-skip" not in c.get("metadata", {}).get("tags", [])
            if c["cell_type"] != "code" or not text.strip():
                continue
            assert c.get("execution_count"), f"{path.name}: a code cell was never run: {text[:60]!r}"
            assert all(o.get("output_type") != "error" for o in c.get("outputs", [])), text[:80]

    def test_outputs_carry_no_machine_paths_or_ports(self, path):
        for c in load(path)["cells"]:
            if c["cell_type"] != "code":
                continue
            out = re.sub(r"\x1b\[[0-9;]*m", "", output_text(c))
            # The attacker names the client's own (ephemeral) source port: not a lab port.
            out = re.sub(r"client 127\.0\.0\.1:\d+ connected", "client connected", out)
            for bad in ("/tmp/", "/root/", "/work/", "/home/"):
                assert bad not in out, f"{path.name}: {bad} in output of {src(c)[:60]!r}"
            for port in re.findall(r"127\.0\.0\.1\]?:(\d+)", out):
                assert port in DEFAULT_PORTS, f"{path.name}: port {port} in output of {src(c)[:60]!r}"

    def test_lesson_commands_are_typed_as_on_a_server(self, path):
        """Shell cells aim at the lab through the environment, never with -c or a hard-coded lab path."""
        for c in load(path)["cells"]:
            text = src(c)
            if c["cell_type"] != "code":
                continue
            assert "postconf -c" not in text and "/var/lib/labsim" not in text
            assert not re.search(r"127\.0\.0\.1:\d", text), "ports come from $LABSIM_*_PORT"


def test_the_course_covers_the_lesson():
    """Every command and idea of the lesson outline appears in some notebook's cells."""
    text = "\n".join(src(c) for p in NOTEBOOKS for c in load(p)["cells"])
    for needle in (
        "labsim certbot certonly --standalone --rsa-key-size 4096 --agree-tos --preferred-challenges http -d lab.itpro.tv",
        "postconf | grep 'smtpd_tls_cert\\|smtpd_tls_key'",
        "postconf -e \"smtpd_tls_cert_file=", "postconf -e \"smtpd_tls_key_file=", "labsim restart",
        "postconf smtpd_tls_security_level", "postconf -e 'smtpd_tls_security_level=encrypt'",
        "openssl s_client -starttls smtp", "openssl x509", "swaks", "--tls", "posttls-finger",
        "smtpd_tls_received_header", "TLS connection established", "fullchain.pem", "privkey.pem",
        "ufw allow 80", "systemctl restart postfix", "Mitm(lab, \"observe\")", "Mitm(lab, \"tamper\")",
        "Mitm(lab, \"strip\")", "sender.up(lab, \"none\")", "530 5.7.0", "RFC 3207", "587", "DANE", "MTA-STS",
        "--key-type rsa", "self-signed",
    ):
        assert needle in text, needle


def test_sanitizer_file_parses_as_nbval_reads_it():
    """nbval reads `regex: ...` / `replace: ...` line pairs; a section whose pair does not parse is silently
    dropped (an editor that strips the trailing space of an empty `replace: ` would do that)."""
    from nbval.plugin import get_sanitize_patterns

    text = (NB_DIR / "sanitize.cfg").read_text()
    sections = re.findall(r"^\[regex\d+\]$", text, re.M)
    patterns = get_sanitize_patterns(text)
    assert len(patterns) == len(sections)
    for regex, _replace in patterns:
        re.compile(regex)


def test_sanitizer_maps_a_test_lab_to_the_stored_text():
    from nbval.plugin import get_sanitize_patterns

    patterns = get_sanitize_patterns((NB_DIR / "sanitize.cfg").read_text())

    def clean(s: str) -> str:
        for regex, replace in patterns:
            s = re.sub(regex, replace, s)
        return s

    stored = ("lab up: postfix on 127.0.0.1:2525, home /var/lib/labsim\n"
              "Nov 24 19:51:59 lab postfix/smtpd[17408]: 8E72A20C1E3: client=localhost[127.0.0.1]\n"
              "<-  250 2.0.0 Ok: queued as 8E72A20C1E3\nissuer=CN = Pebble Intermediate CA 6acda9\n")
    test = ("lab up: sim on 127.0.0.1:41234, home /tmp/labsim-nbval-AbC123xy\n"
            "Dec  1 08:00:01 lab postfix/smtpd[99]: 8E72A20C1E3: client=localhost[127.0.0.1]\n"
            "<-  250 2.0.0 Ok: queued as 0A99A14632D\nissuer=CN = Pebble Intermediate CA 0f1e2d\n")
    assert clean(stored) == clean(test)
