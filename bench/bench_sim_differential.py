"""The long differential run: generated SMTP sessions on the real Postfix and the simulator, same main.cf.

    sudo .venv/bin/python bench/bench_sim_differential.py --sessions 10000 [--save]

Spreads the sessions over the whole configuration matrix (``labsim.sim.known_differences.config_matrix``:
270 combinations of TLS level, certificate state, relay settings, size limit, smtpd_forbid_bare_newline),
compares replies and smtpd/cleanup log lines like ``tests/test_sim_differential.py``, and prints the
sessions run, the differences found (shrunk by hypothesis: one per configuration at most) and the time.
``--save`` writes each difference to ``tests/corpus/new-<config>.json`` for the corpus replay test (fix the
simulator or list it in known_differences.py, then rename the file to say what it checks).
Needs root and the Debian postfix package; uses free ports and temporary lab homes only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, given, settings as hsettings  # noqa: E402

from labsim.sim import known_differences  # noqa: E402
from tests.sim_fixtures import Pair, diff, run_both, session_strategy  # noqa: E402


def report(got: dict) -> str:
    """What differed in one session: replies, smtpd/cleanup log lines, delivered messages."""
    out = []
    for i, what in enumerate(("replies", "smtpd log", "delivered messages")):
        want, sim = got["postfix"][i], got["sim"][i]
        if want != sim:
            if what == "delivered messages":
                want = [ln for m in want for ln in [*m.splitlines(), "----"]]
                sim = [ln for m in sim for ln in [*m.splitlines(), "----"]]
            out.append(diff(what, want, sim))
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--configs", type=int, default=None, help="use only the first N configurations")
    ap.add_argument("--match", default="", help="only configurations whose id contains this (e.g. barereject)")
    ap.add_argument("--start", type=int, default=0, help="skip the first N configurations (go on from a run)")
    ap.add_argument("--save", action="store_true", help="write differences to tests/corpus/new-*.json")
    args = ap.parse_args()
    configs = [c for c in known_differences.config_matrix(limit=args.configs)[args.start:]
               if args.match in known_differences.config_id(c)]
    per_config = max(1, args.sessions // len(configs))
    pair = Pair()
    ran, found, start = 0, [], time.monotonic()
    try:
        for conf in configs:
            pair.configure(**conf)
            count = {"n": 0}
            seen: list[str] = []

            @hsettings(max_examples=per_config, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            @given(session_strategy().filter(lambda steps: not known_differences.excluded(conf, steps)))
            def sessions(steps: list) -> None:
                count["n"] += 1
                got = run_both(pair, steps)
                if got["postfix"] != got["sim"]:
                    if len(seen) < 3:  # the first few as found, before hypothesis shrinks them
                        seen.append(json.dumps({"config": conf, "steps": steps}) + "\n" + report(got))
                    raise AssertionError(json.dumps({"config": conf, "steps": steps}))

            try:
                sessions()
            except Exception as error:  # noqa: BLE001 - hypothesis may raise a group of distinct failures
                example = re.search(r"\{\"config\".*\}", str(error))
                found.append(known_differences.config_id(conf))
                print(f"DIFFERENT {known_differences.config_id(conf)}: {example.group(0) if example else error}")
                for text in seen:
                    print(f"  as found: {text}")
                if args.save and example:
                    path = ROOT / "tests" / "corpus" / f"new-{known_differences.config_id(conf)}.json"
                    path.write_text(json.dumps(json.loads(example.group(0)), indent=1) + "\n")
            ran += count["n"]
            print(f"{known_differences.config_id(conf)}: {count['n']} sessions, {time.monotonic() - start:.0f} s",
                  flush=True)
    finally:
        pair.close()
    elapsed = time.monotonic() - start
    print(f"{ran} sessions (each on both servers) over {len(configs)} configurations in {elapsed:.0f} s "
          f"({ran / elapsed:.1f} sessions/s); configurations with a difference: {len(found)}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
