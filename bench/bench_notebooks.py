"""How long the nbval stage takes: every notebook on both backends, as scripts/test.sh runs it.

    .venv/bin/python bench/bench_notebooks.py               # both backends side by side (as make test)
    .venv/bin/python bench/bench_notebooks.py --sequential  # one backend after the other
    .venv/bin/python bench/bench_notebooks.py --backend sim # one backend

Each backend runs notebooks/nbval.sh (a fresh temporary lab home, free ports, the lab stopped afterwards and
no process left). Prints the wall time of the whole stage, each backend's time, and each notebook's time
(the sum of its cells' test times from pytest's JUnit XML, which leaves out kernel start-up), with the load
average seen before and after: the machine is shared, so a busy neighbour shows up there. Target: the
whole stage under 180 s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 180.0


def start(backend: str, xml: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(["bash", str(ROOT / "notebooks" / "nbval.sh"), backend, "-q", f"--junitxml={xml}"],
                            cwd=ROOT, stdout=open(log, "wb"), stderr=subprocess.STDOUT)


def per_notebook(xml: Path) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    try:
        tree = ET.parse(xml)
    except (OSError, ET.ParseError):
        return {}
    for case in tree.iter("testcase"):
        # nbval: classname="notebooks.01-smtp-in-the-clear.ipynb", name="Cell 3"
        nb = case.get("classname", "").removeprefix("notebooks.")
        out[nb] += float(case.get("time", 0))
    return dict(sorted(out.items()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", choices=["postfix", "sim"], action="append")
    ap.add_argument("--sequential", action="store_true", help="one backend after the other")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    backends = a.backend or ["postfix", "sim"]
    tmp = Path(tempfile.mkdtemp(prefix="bench-notebooks-"))
    load_before = os.getloadavg()
    t0 = time.monotonic()
    results: dict[str, dict] = {}
    procs: dict[str, tuple[subprocess.Popen, float]] = {}
    for b in backends:
        procs[b] = (start(b, tmp / f"{b}.xml", tmp / f"{b}.log"), time.monotonic())
        if a.sequential:
            p, t = procs[b]
            results[b] = {"status": p.wait(), "seconds": time.monotonic() - t}
    for b, (p, t) in procs.items():
        if b not in results:
            results[b] = {"status": p.wait(), "seconds": time.monotonic() - t}
    total = time.monotonic() - t0
    for b in backends:
        results[b]["notebooks"] = per_notebook(tmp / f"{b}.xml")
        results[b]["tail"] = (tmp / f"{b}.log").read_text(errors="replace").strip().splitlines()[-1:]
    report = {"backends": results, "total_seconds": round(total, 1), "target_seconds": TARGET_S,
              "mode": "sequential" if a.sequential else "side by side",
              "loadavg_before": load_before, "loadavg_after": os.getloadavg(), "cpus": os.cpu_count()}
    if a.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"nbval stage ({report['mode']}, {os.cpu_count()} CPUs): {total:.1f} s "
              f"(target < {TARGET_S:.0f} s) {'OK' if total < TARGET_S else 'TOO SLOW'}")
        print(f"load average before {load_before[0]:.2f}, after {report['loadavg_after'][0]:.2f}")
        names = sorted({n for r in results.values() for n in r["notebooks"]})
        print(f"\n{'notebook':36}" + "".join(f"{b:>10}" for b in backends))
        for n in names:
            print(f"{n:36}" + "".join(f"{results[b]['notebooks'].get(n, 0):9.1f}s" for b in backends))
        print(f"{'cells, summed':36}" + "".join(f"{sum(results[b]['notebooks'].values()):9.1f}s" for b in backends))
        print(f"{'backend wall time':36}" + "".join(f"{results[b]['seconds']:9.1f}s" for b in backends))
        for b in backends:
            print(f"{b}: exit {results[b]['status']}: {' '.join(results[b]['tail'])}")
    ok = all(r["status"] == 0 for r in results.values())
    if ok:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"logs: {tmp}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
