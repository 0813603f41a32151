#!/usr/bin/env python3
"""Write labsim/data/postconf-defaults.json from the real ``postconf -d``.

The simulator and the ``postconf`` work-alike must know Postfix 3.7's default for every parameter, exactly
as ``postconf -d`` prints it (unexpanded, ``$name`` references and all). Copying them by hand would drift;
this script records them from the real program, so the data can be regenerated on any machine with
Postfix installed. Host-dependent values (``myhostname``, ``mydomain``, ``mynetworks``, ``process_id``)
are recorded as seen but computed again at run time by ``labsim.maincf.model``.

Usage: python scripts/gen_postconf_defaults.py [OUTPUT]
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

OUTPUT = Path(__file__).resolve().parent.parent / "labsim" / "data" / "postconf-defaults.json"


def read_defaults() -> dict[str, str]:
    """Run ``postconf -d`` and parse its ``name = value`` lines (``name =`` for an empty value)."""
    out = subprocess.run(["postconf", "-d"], check=True, capture_output=True, text=True).stdout
    defaults: dict[str, str] = {}
    for line in out.splitlines():
        name, sep, value = line.partition(" =")
        if not sep:
            raise SystemExit(f"unexpected postconf -d line: {line!r}")
        defaults[name] = value[1:] if value.startswith(" ") else value
    return defaults


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else OUTPUT
    defaults = read_defaults()
    version = defaults.get("mail_version", "?")
    data = {
        "source": f"postconf -d of Postfix {version}, written by scripts/gen_postconf_defaults.py",
        "mail_version": version,
        "defaults": defaults,
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"{target}: {len(defaults)} parameters of Postfix {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
