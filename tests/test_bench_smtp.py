"""Smoke test of bench/bench_smtp.py with tiny counts: it runs, measures something, and parses openssl."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from labsim.backends import postfix

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_smtp.py"


def test_openssl_speed_output_is_parsed() -> None:
    sys.path.insert(0, str(BENCH.parent))
    import bench_smtp

    sample = ("                  sign    verify    sign/s verify/s\n"
              "rsa 2048 bits 0.001036s 0.000029s    965.7  34216.8\n"
              "rsa 4096 bits 0.006242s 0.000097s    160.2  10265.3\n")
    assert {int(m[1]): float(m[2]) for m in bench_smtp.SPEED_RE.finditer(sample)} == {2048: 965.7, 4096: 160.2}


@pytest.mark.postfix
def test_bench_runs_with_tiny_counts() -> None:
    if not postfix.installed() or os.geteuid() != 0:
        pytest.skip("needs root and Debian's postfix package")
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--backends", "sim", "postfix", "--key-sizes", "2048", "--seconds", "0.5",
         "--clients", "2", "--count", "10", "--repeat", "1", "--no-openssl", "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(proc.stdout[proc.stdout.index('{\n  "rows"'):])
    by_backend = {r["backend"]: r for r in data["rows"]}
    assert by_backend["postfix"]["messages_per_s"] > 0 and by_backend["postfix"]["note"] == ""
    sim = by_backend["sim"]
    assert sim["messages_per_s"] > 0 and sim["note"] == "", sim  # a skipped backend is not a measurement
