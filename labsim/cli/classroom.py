"""The ``labsim classroom`` commands: a thin click layer over ``labsim.classroom``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .. import checks
from ..classroom import (DEFAULT_BASE_PORT, DEFAULT_STRIDE, block_exports, down, load, names_from, report,
                        report_rows, status, up)
from .tools import friendly

dir_option = click.option("--dir", "root", type=click.Path(file_okay=False, path_type=Path), default=None,
                          help="The classroom directory (default: $LABSIM_CLASSROOM, or /var/lib/labsim-classroom "
                               "for root).")
jobs_option = click.option("--jobs", default=8, show_default=True, help="Labs handled at the same time.")


@click.group("classroom")
def classroom_group() -> None:
    """One isolated lab per student on this machine: up, status, report, down."""


@classroom_group.command("up")
@click.option("--students", "count", type=int, help="Number of students (student01, student02, ...).")
@click.option("--roster", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A file with one student name per line.")
@click.option("--backend", type=click.Choice(["auto", "postfix", "sim"]), default="auto", show_default=True)
@click.option("--base-port", default=None, help=f"First port of student 1's block (default {DEFAULT_BASE_PORT}; "
              "'auto' finds free blocks).")
@click.option("--stride", default=DEFAULT_STRIDE, show_default=True, help="Ports per student block.")
@dir_option
@jobs_option
@friendly(prog='labsim classroom')
def up_command(count, roster, backend, base_port, stride, root, jobs) -> None:
    """Start a lab for every student; write each student's env file."""
    room = up(root, names_from(count, roster), backend, base_port, stride, jobs)
    click.echo(f"classroom up: {len(room.students)} labs ({room.backend}) in {room.root}")
    for s in room.students:
        click.echo(f"  {s.name:<16} smtp {s.settings.host}:{s.settings.smtp_port}   eval \"$(cat {s.env_file})\"")


@classroom_group.command("status")
@click.option("--json", "as_json", is_flag=True)
@dir_option
@jobs_option
@friendly(prog='labsim classroom')
def status_command(as_json, root, jobs) -> None:
    """Each student's lab and check results (runs every check now) and quiz results."""
    rows = status(root, jobs)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    steps = list(checks.lab_steps())
    click.echo(f"{'student':<16} {'lab':<5} " + " ".join(f"{n:<13}" for n in steps) + " quiz")
    for r in report_rows(rows):
        marks = " ".join(f"{r[f'check_{n}']:<13}" for n in steps)
        click.echo(f"{r['student']:<16} {'up' if r['running'] else 'down':<5} {marks} "
                   f"{r['quiz_correct']}/{r['quiz_answers']}")


@classroom_group.command("report")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), help="default: DIR/report.csv")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), help="default: DIR/report.html")
@dir_option
@jobs_option
@friendly(prog='labsim classroom')
def report_command(csv_path, html_path, root, jobs) -> None:
    """Write the grading report: CSV and a self-contained HTML page."""
    c, h, rows = report(root, csv_path, html_path, jobs)
    click.echo(f"{len(rows)} students: {c}, {h}")


@classroom_group.command("down")
@click.option("--purge", is_flag=True, help="Also delete the classroom directory (labs, env files, quiz results).")
@dir_option
@jobs_option
@friendly(prog='labsim classroom')
def down_command(purge, root, jobs) -> None:
    """Stop every lab of the classroom; no process of it is left."""
    result = down(root, purge, jobs)
    click.echo(f"classroom down: {result['stopped']} labs stopped"
               + (f", {len(result['killed_leftovers'])} leftover processes ended" if result["killed_leftovers"] else ""))
    for name, e in result["errors"].items():
        click.echo(f"  {name}: {e}", err=True)


@classroom_group.command("env")
@click.argument("name")
@dir_option
@friendly(prog='labsim classroom')
def env_command(name, root) -> None:
    """Print a student's env file (eval "$(labsim classroom env NAME)")."""
    click.echo(load(root).student(name).env_file.read_text(), nl=False)


@classroom_group.command("ports")
@click.option("--base", "base", type=int, required=True, help="First port of the block.")
@click.option("--index", default=0, show_default=True, help="Block number (student index, from 0).")
@click.option("--stride", default=DEFAULT_STRIDE, show_default=True)
@friendly(prog='labsim classroom')
def ports_command(base, index, stride) -> None:
    """Print export lines for one port block (used by binder/start with LABSIM_PORT_BASE)."""
    click.echo(block_exports(base, index, stride))
