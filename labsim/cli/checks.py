"""The ``labsim check`` and ``labsim solve`` commands: a thin click layer over ``labsim.checks``."""

from __future__ import annotations

import json
import sys

import click

from .. import checks
from .tools import print_error
from ..errors import LabError
from ..settings import Settings


def _steps_arg(step: str | None) -> list[str]:
    if step is None or step == "all":
        return checks.lab_steps()
    checks.get(step)
    return [step]


@click.command("check")
@click.argument("step", required=False, type=click.Choice([*checks.REGISTRY, "all"]))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--solution", is_flag=True, help="Also show how to fix each failing condition.")
@click.option("--solve", "do_solve", is_flag=True, help="Do the step(s) as the lesson does, then check.")
def check_command(step: str | None, as_json: bool, solution: bool, do_solve: bool) -> None:
    """Check the lab against a step of the lesson (the lesson's steps when none is given). Exit 0 when all pass.

    Steps: certificate, postfix-tls, opportunistic, encrypt; and the notebooks' exercises: tamper, rsa-4096,
    client-encrypt, tlsa, mta-sts.
    """
    s = Settings.from_env()
    names = _steps_arg(step)
    try:
        if do_solve:
            for n in names:
                for line in checks.solve(s, n):
                    click.echo(f"solve {n}: {line}", err=as_json)
    except LabError as e:
        print_error(e)
        sys.exit(2)
    results = checks.run_checks(s, names)
    checks.record(s, results)
    if as_json:
        payload = [r.as_dict(solution) for r in results]
        click.echo(json.dumps({"ok": all(r.ok for r in results), "steps": payload}, indent=2))
    else:
        click.echo(checks.render(results, solution))
    sys.exit(0 if all(r.ok for r in results) else 1)


@click.command("solve")
@click.argument("step", type=click.Choice(list(checks.REGISTRY)))
def solve_command(step: str) -> None:
    """Do a step of the lesson for you (certbot, postconf -e, reload), then check it."""
    s = Settings.from_env()
    try:
        for line in checks.solve(s, step):
            click.echo(f"{step}: {line}")
    except LabError as e:
        print_error(e)
        sys.exit(2)
    result = checks.run_check(s, step)
    checks.record(s, [result])
    click.echo(checks.render([result]))
    sys.exit(0 if result.ok else 1)
