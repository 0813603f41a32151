"""A ``postconf`` work-alike for machines without Postfix, for the parts the lesson uses.

``postconf``, ``postconf NAME...``, ``-n``, ``-d``, ``-h``, ``-x``, ``-e``, ``-X``, ``-c DIR`` and
``postconf name=value``, honouring ``MAIL_CONFIG`` like the real one, so the notebooks' commands read
the same on both backends. It reads and edits main.cf through ``labsim.maincf.model`` (the simulator's
own model), and words its warnings and errors as Postfix 3.7.11's postconf does (checked on the lab
machine): ``postconf: warning: NAME: unknown parameter`` (exit 0), ``postconf: fatal: open
DIR/main.cf: No such file or directory`` (exit 1), and so on.

Run as ``python -m labsim.maincf.postconf_alike ARGS``.
"""

from __future__ import annotations

import getopt
import os
import sys
from pathlib import Path
from typing import TextIO

from .model import DEFAULT_CONFIG_DIR, ConfigError, MainCf, defaults

PROG = "postconf"
OPTIONS = "c:dehnxHX"
USAGE = (
    "usage: postconf [-a (server SASL types)] [-A (client SASL types)] [-b (bounce templates)] "
    "[-c config_dir] [-c param_class] [-d (parameter defaults)] [-e (edit configuration)] "
    "[-f (fold lines)] [-F (master.cf fields)] [-h (no names)] [-H (no values)] [-l (lock types)] "
    "[-m (map types)] [-M (master.cf)] [-n (non-default parameters)] [-o name=value (override parameter "
    "value)] [-p (main.cf, default)] [-P (master.cf parameters)] [-t (bounce templates)] "
    "[-T compile-version|run-version|public-key-algorithms] [-v (verbose)] [-x (expand parameter values)] "
    "[-X (exclude)] [-# (comment-out)] [name...]"
)


class Fatal(Exception):
    """``postconf: fatal: ...``: print it and exit 1."""


def _print(out: TextIO, name: str, value: str, names: bool, values: bool) -> None:
    value = " ".join(value.split())  # postconf prints a value on one line, whitespace collapsed
    if not names:
        out.write(value + "\n")
    elif not values:
        out.write(name + "\n")
    else:
        out.write(f"{name} = {value}".rstrip() + "\n" if value else f"{name} =\n")


def _split_assignment(arg: str) -> tuple[str, str]:
    name, eq, value = arg.partition("=")
    name = name.strip()
    if not eq or not name or any(c.isspace() for c in name):
        raise Fatal(f'missing \'=\' after attribute name: "{arg}"')
    return name, value.strip()


def run(argv: list[str], out: TextIO, err: TextIO, env: dict[str, str] | None = None) -> int:
    """The whole command; returns its exit status."""
    env = dict(os.environ if env is None else env)

    def warn(msg: str) -> None:
        err.write(f"{PROG}: warning: {msg}\n")

    try:
        opts, args = getopt.getopt(argv, OPTIONS)
    except getopt.GetoptError as e:
        if e.opt and "requires argument" in e.msg:
            err.write(f"{PROG}: option requires an argument -- '{e.opt}'\n")
        else:
            err.write(f"{PROG}: invalid option -- '{e.opt}'\n")
        err.write(f"{PROG}: fatal: {USAGE}\n")
        return 1
    flags = {o for o, _ in opts}
    config_arg = next((v for o, v in reversed(opts) if o == "-c"), None)
    config_dir = config_arg or env.get("MAIL_CONFIG") or str(DEFAULT_CONFIG_DIR)
    names, values, expand = "-h" not in flags, "-H" not in flags, "-x" in flags
    try:
        if {"-d", "-n"} <= flags:
            raise Fatal("specify one of -d -n")
        if {"-e", "-X"} <= flags:
            raise Fatal("specify one of -e -X")
        if "-X" in flags:
            if not args:
                raise Fatal("missing service argument")
            conf = MainCf.load(config_dir)
            conf.save(remove=args)
            return 0
        if "-e" in flags or any("=" in a for a in args):
            if not args:
                raise Fatal("-e requires name=value argument")
            changes = dict(_split_assignment(a) for a in args)
            conf = MainCf.load(config_dir)
            conf.save(changes=changes)
            return 0
        if "-d" in flags:
            table = defaults(None)  # -d shows the compiled-in defaults, config_directory included
            chosen = args or sorted(table)
            for name in chosen:
                if name in table:
                    _print(out, name, table[name], names, values)
                else:
                    warn(f"{name}: unknown parameter")
            return 0
        conf = MainCf.load(config_dir)
        if not (Path(config_dir) / "master.cf").exists():
            warn(f"open {Path(config_dir) / 'master.cf'}: No such file or directory")
        for name in conf.unused():
            warn(f"{conf.path}: unused parameter: {name}={conf.params[name]}")
        if config_arg or env.get("MAIL_CONFIG"):
            # postconf -n shows config_directory when it was given (-c or MAIL_CONFIG), as seen on 3.7.11.
            conf.params.setdefault("config_directory", config_dir)
        lookup = conf.lookup()
        used = conf.referenced_names()
        if "-n" in flags:
            shown = [n for n in sorted(conf.params) if n in conf.defaults or n in used or n == "config_directory"]
            chosen = [n for n in args if n in shown] if args else shown
            for name in args:
                if not conf.is_known(name):
                    warn(f"{name}: unknown parameter")
        else:
            chosen = args or sorted(set(conf.defaults) | {n for n in conf.params if n in used})
        for name in chosen:
            if name not in lookup:
                warn(f"{name}: unknown parameter")
                continue
            _print(out, name, conf.get(name) if expand else lookup[name], names, values)
        return 0
    except Fatal as e:
        err.write(f"{PROG}: fatal: {e}\n")
        return 1
    except ConfigError as e:
        err.write(f"{PROG}: fatal: {e}\n")
        return 1


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m labsim.maincf.postconf_alike ARGS``."""
    return run(list(sys.argv[1:] if argv is None else argv), sys.stdout, sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
