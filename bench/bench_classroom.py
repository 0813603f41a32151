#!/usr/bin/env python3
"""A whole class at once on this machine: time for the class, memory per student lab, for each backend.

Why: an instructor wants to know whether one server carries a class. This starts ``--students`` labs
(``labsim classroom up``), then every student at the same time runs the lesson's steps in their own shell,
aimed at their own lab by their env file (``labsim check STEP --solve --json`` for certificate,
postfix-tls, opportunistic, encrypt: the lesson's certbot command, postconf -e on the lab config, restart, reload, then the
check), and every check must pass. Then ``classroom report`` and ``classroom down``.

Figures: wall time of up, of the steps for the whole class, of the report and of down; memory per student
lab (PSS and RSS summed over the lab's processes from /proc: the mail server, i.e. Postfix's master and
children or the simulator, and the lab CA, pebble and its mock DNS), idle after up and after the steps.
PSS splits shared pages among the processes sharing them, so PSS sums add up to real use; RSS counts shared
pages in every process. Run as root (the real Postfix needs it)::

    .venv/bin/python bench/bench_classroom.py                    # 30 students, both backends: a few minutes
    .venv/bin/python bench/bench_classroom.py --students 5 --backends sim   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labsim import classroom  # noqa: E402

BIN = Path(sys.executable).parent
STEPS = ("certificate", "postfix-tls", "opportunistic", "encrypt")


def student_shell(env_file: Path, command: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABSIM_", "QUIZZES_", "MAIL_CONFIG"))}
    env["PATH"] = f"{BIN}:/usr/sbin:/usr/bin:/sbin:/bin"
    return subprocess.run(["bash", "-c", f'eval "$(cat {env_file})" && {command}'], capture_output=True,
                          text=True, env=env, timeout=900)


def run_student(s: classroom.Student) -> dict:
    """One student: each step solved, then checked; what failed (nothing, we hope) and how long it took."""
    t0 = time.monotonic()
    failures = []
    for step in STEPS:
        p = student_shell(s.env_file, f"labsim check {step} --solve --json")
        try:
            ok = json.loads(p.stdout)["ok"] and p.returncode == 0
        except ValueError:
            ok = False
        if not ok:
            failures.append(f"{step}: rc={p.returncode} {(p.stdout + p.stderr)[-400:]}")
    return {"student": s.name, "seconds": time.monotonic() - t0, "failures": failures}


def lab_memory(room: classroom.Classroom) -> dict:
    per = []
    for s in room.students:
        parts = classroom.lab_processes(s.settings)
        per.append({part: classroom.memory(pids) for part, pids in parts.items()})

    def mean(part: str, key: str) -> float:
        return statistics.mean(p[part][key] for p in per) / 1024 if per else 0.0

    return {
        "mail_pss_mb": mean("mail", "pss_kb"), "mail_rss_mb": mean("mail", "rss_kb"),
        "ca_pss_mb": mean("ca", "pss_kb"), "ca_rss_mb": mean("ca", "rss_kb"),
        "mail_processes": statistics.mean(p["mail"]["processes"] for p in per) if per else 0,
        "ca_processes": statistics.mean(p["ca"]["processes"] for p in per) if per else 0,
    }


def bench(backend: str, students: int, jobs: int) -> dict:
    root = Path(tempfile.mkdtemp(prefix=f"labsim-bench-class-{backend}-", dir="/tmp"))
    os.chmod(root, 0o711)
    out: dict = {"backend": backend, "students": students}
    try:
        t = time.monotonic()
        room = classroom.up(root, classroom.names_from(students), backend, "auto", jobs=jobs)
        out["up_s"] = time.monotonic() - t
        time.sleep(1)
        out["idle"] = lab_memory(room)
        t = time.monotonic()
        with ThreadPoolExecutor(max_workers=students) as pool:
            runs = list(pool.map(run_student, room.students))
        out["steps_s"] = time.monotonic() - t
        out["student_s_median"] = statistics.median(r["seconds"] for r in runs)
        out["student_s_max"] = max(r["seconds"] for r in runs)
        out["failures"] = [f"{r['student']} {f}" for r in runs for f in r["failures"]]
        out["busy"] = lab_memory(room)
        t = time.monotonic()
        _c, _h, rows = classroom.report(root, jobs=jobs)
        out["report_s"] = time.monotonic() - t
        out["report_passes"] = sum(1 for r in rows for n in ("certificate", "postfix-tls", "encrypt")
                                   if r["checks"].get(n, {}).get("ok"))
        out["load_avg"] = os.getloadavg()
    finally:
        t = time.monotonic()
        result = classroom.down(root)
        out["down_s"] = time.monotonic() - t
        out["left_after_down"] = len(classroom.leftover_processes(root)) + len(result["killed_leftovers"])
        shutil.rmtree(root, ignore_errors=True)
    return out


def show(r: dict) -> None:
    n = r["students"]
    print(f"\n== {r['backend']}: {n} students ==")
    print(f"classroom up         {r['up_s']:7.1f} s")
    print(f"all lesson steps     {r['steps_s']:7.1f} s for the class (per student: median {r['student_s_median']:.1f} s, "
          f"slowest {r['student_s_max']:.1f} s); failed checks: {len(r['failures'])}")
    print(f"classroom report     {r['report_s']:7.1f} s ({r['report_passes']}/{3 * n} passing step checks expected)")
    print(f"classroom down       {r['down_s']:7.1f} s, processes left: {r['left_after_down']}")
    for label in ("idle", "busy"):
        m = r[label]
        print(f"memory per lab ({label:4}) mail server {m['mail_pss_mb']:6.1f} MB PSS / {m['mail_rss_mb']:6.1f} MB RSS "
              f"({m['mail_processes']:.1f} processes); CA {m['ca_pss_mb']:5.1f} MB PSS / {m['ca_rss_mb']:5.1f} MB RSS; "
              f"total {m['mail_pss_mb'] + m['ca_pss_mb']:.1f} MB PSS")
    print(f"load average after the steps: {' '.join(f'{x:.1f}' for x in r['load_avg'])}")
    for f in r["failures"][:5]:
        print(f"  FAILED {f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=30)
    ap.add_argument("--backends", default="sim,postfix", help="comma-separated: sim, postfix")
    ap.add_argument("--jobs", type=int, default=8, help="labs started at the same time by classroom up")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    print(f"{args.students} students, {os.cpu_count()} CPUs, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB", flush=True)
    results = []
    for backend in args.backends.split(","):
        r = bench(backend.strip(), args.students, args.jobs)
        results.append(r)
        if not args.json:
            show(r)
    if args.json:
        print(json.dumps(results, indent=2))
    sys.exit(1 if any(r["failures"] for r in results) else 0)


if __name__ == "__main__":
    main()
