"""The ``labsim`` command (``main``, the click group) and the lab's commands: a thin click layer over labsim's
functions (which notebooks and tests call)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from .. import acme, lab, mailbox
from ..backends import postfix
from .tools import friendly
from ..errors import LabError
from ..settings import Settings

console = Console()
err = Console(stderr=True)
PASS = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


def settings() -> Settings:
    return Settings.from_env()


@click.group()
@click.version_option(package_name="postfix-tls-lab")
def main() -> None:
    """A private, real Postfix lab for "Securing Postfix with TLS" (LPIC-2 202-450).

    Ports and paths come from LABSIM_* environment variables (see `labsim env`).
    """


@main.command()
@click.option("--backend", type=click.Choice(["auto", "postfix", "sim"]), default=None,
              help="postfix (real, needs root), sim (simulator), auto (default: postfix where it can run).")
@friendly
def up(backend: str | None) -> None:
    """Start the lab: the mail server on 127.0.0.1 and the lab's Let's Encrypt CA."""
    s = settings()
    chosen, why = lab.choose_backend(s, backend)
    st = lab.up(s, chosen)
    console.print(f"[green]lab up[/]: {st['backend']} on {st['host']}:{st['smtp_port']}, home {st['home']}")
    if (backend or s.backend) == "auto":  # the lab chose: say which and why (asked for, you know)
        err.print(lab.backend_explained(chosen, why), highlight=False, soft_wrap=True)
    if not st["ca_running"]:
        err.print("[yellow]labsim:[/] the lab CA is not running (pebble/certbot missing?): see labsim doctor")
    console.print("Aim the lesson's commands at the lab:  eval \"$(labsim env)\"")


@main.command()
@friendly
def down() -> None:
    """Stop every process of the lab (its files stay under LABSIM_HOME)."""
    lab.down(settings())
    console.print("lab down")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@friendly
def status(as_json: bool) -> None:
    """Show the backend, port, certificate and key in use, TLS level, and recent log problems."""
    st = lab.status(settings())
    if as_json:
        click.echo(json.dumps(st, indent=2))
        return
    t = Table(show_header=False, box=None)
    for k, v in st.items():
        if k not in ("problems", "unused_parameters"):
            t.add_row(k, str(v))
    console.print(t)
    for line in st["unused_parameters"]:
        err.print(f"[yellow]unused:[/] {line}", highlight=False, soft_wrap=True)
    for line in st["problems"]:
        err.print(f"[red]log:[/] {line}", markup=True, highlight=False)


@main.command(context_settings=PASS)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def postconf(args: tuple[str, ...]) -> None:
    """Run the real `postconf -c <lab config dir> ARGS...` (e.g. -e 'smtpd_tls_security_level=encrypt')."""
    s = settings()
    proc = postfix.postconf(s, *args)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    # postconf -e accepts any name (exit 0) and Postfix then ignores a misspelt one: say so, on both backends.
    edited = {a.split("=", 1)[0].strip() for a in args if "=" in a and not a.startswith("-")}
    if edited and proc.returncode == 0:
        for name, near in lab.unused_parameters(s):
            if name in edited:
                err.print(f"[yellow]labsim: warning:[/] {lab.unused_message(name, near)}."
                          + (f" Undo: labsim postconf -X {name}" if near else ""), highlight=False, soft_wrap=True)
    sys.exit(proc.returncode)


@main.command()
@friendly
def reload() -> None:
    """`postfix reload`: apply a changed main.cf, then check the server as a client would."""
    s = settings()
    mark = postfix.log_size(s)
    lab.reload(s)
    _report_health(s, mark, "reloaded")


@main.command()
@friendly
def restart() -> None:
    """Stop and start the mail server (what `systemctl restart postfix` does), then check it."""
    s = settings()
    mark = postfix.log_size(s)
    lab.restart(s)
    _report_health(s, mark, "restarted")


def _report_health(s: Settings, mark: int, did: str) -> None:
    """Say what the change left: the word alone when all is well; else what a client finds, the log lines
    and the fix. Exit 1 when the server does not serve (or, at encrypt, cannot start TLS: nobody can send)."""
    h = lab.health(s, mark)
    lines = lab.explain_health(s, h, did)
    if not lines:
        console.print(did)
        return
    err.print(f"[yellow]labsim:[/] {lines[0]}", highlight=False, soft_wrap=True)
    for line in lines[1:]:
        err.print(line, markup=False, highlight=False, soft_wrap=True)
    if not h.serving or (h.tls_broken and h.level == "encrypt"):
        sys.exit(1)


@main.command()
@click.option("-n", "--lines", default=30, show_default=True)
@click.option("-f", "--follow", is_flag=True)
@friendly
def logs(lines: int, follow: bool) -> None:
    """Show the lab's mail log (Postfix's maillog_file)."""
    s = settings()
    path = s.log_file
    if not path.exists():
        raise LabError(f"No log yet at {path}.", hint="labsim up")
    if lines <= 0:  # -n 0: the whole log, as before
        text = postfix.log_since(s, 0).splitlines()
    else:
        text = postfix.log_tail(s, max(200_000, lines * 1000)).splitlines()[-lines:]
    click.echo("\n".join(text))
    if follow:
        with open(path) as f:
            f.seek(0, 2)
            while True:
                line = f.readline()
                if line:
                    click.echo(line, nl=False)
                else:
                    time.sleep(0.3)


@main.command()
@click.option("--json", "as_json", is_flag=True)
@friendly
def doctor(as_json: bool) -> None:
    """Check the lab and say what to do about each problem."""
    findings = lab.doctor(settings())
    if as_json:
        click.echo(json.dumps(lab.findings_json(findings), indent=2))
    else:
        for f in findings:
            mark = "[green]ok[/]  " if f.ok else {"fail": "[red]FAIL[/]", "warn": "[yellow]warn[/]",
                                                 "info": "[blue]info[/]"}[f.level]
            console.print(f"{mark} {f.what}", highlight=False)
            if not f.ok and f.hint:
                console.print(f"      hint: {f.hint}", highlight=False)
    sys.exit(0 if all(f.ok or f.level != "fail" for f in findings) else 1)


@main.command(context_settings=PASS)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@friendly
def certbot(args: tuple[str, ...]) -> None:
    """Run the real certbot with your arguments, aimed at the lab's Let's Encrypt CA."""
    proc = acme.certbot(settings(), list(args))
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)


@main.command()
def env() -> None:
    """Print `export` lines for your shell: eval "$(labsim env)".

    They aim the lesson's plain commands at this lab (MAIL_CONFIG, LABSIM_*), and put on PATH this
    venv's labsim, the Postfix commands (/usr/sbin, not on an ordinary user's PATH) or, without Postfix,
    the simulator's postconf work-alike."""
    import shlex

    s = settings()
    for k, v in s.env().items():
        click.echo(f"export {k}={shlex.quote(v)}")
    click.echo(f"export PATH={shlex.quote(lab.shell_path(s))}")


@main.command()
def shell() -> None:
    """A shell aimed at the lab: what eval "$(labsim env)" does, in a new shell (exit to leave)."""
    s = settings()
    env = {**os.environ, **s.env(), "PATH": lab.shell_path(s)}
    sh = os.environ.get("SHELL") or "/bin/sh"
    err.print(f"[yellow]labsim:[/] a shell aimed at the lab in {s.home} (MAIL_CONFIG={s.config_dir}); "
              "exit leaves it", highlight=False, soft_wrap=True)
    os.execvpe(sh, [sh], env)


@main.command()
@click.argument("lesson", required=False, default="1")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@friendly
def reset(lesson: str, yes: bool) -> None:
    """Put the lab at the start of a lesson (1-5, or its name): stock main.cf plus what that lesson builds on.

    Your main.cf edits and the lab mailbox are lost; lessons 1 and 2 also delete the issued certificates."""
    from .. import notebook

    s = settings()
    num, name, _stage = notebook.lesson(lesson)
    loses = "main.cf and master.cf edits, the mailbox" + (", certbot's certificates" if num <= 2 else "")
    if not yes and not click.confirm(f"Reset the lab in {s.home} to the start of lesson {num} ({name})? "
                                     f"This loses: {loses}.", default=False):
        raise LabError("Nothing changed.", hint=f"labsim reset {num} --yes does it without asking")
    for line in notebook.reset(s, lesson):
        console.print(f"reset: {line}", highlight=False)


@main.command()
@click.option("--json", "as_json", is_flag=True)
def progress(as_json: bool) -> None:
    """Which lesson steps your checks have passed (labsim check, and the notebooks' checks)."""
    from .. import notebook

    rows = notebook.progress(settings())
    if as_json:
        click.echo(json.dumps([{"lesson": n, "name": name, "step": step, "first_passed": when}
                               for n, name, step, when in rows], indent=2))
        return
    for n, name, step, when in rows:
        mark = "[green]done[/]" if when else "[dim]todo[/]"
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(when)) if when else ""
        console.print(f"{mark}  {n} {name:<24} {step:<15} {stamp}", highlight=False)
    done = sum(1 for r in rows if r[3])
    console.print(f"{done} of {len(rows)} steps passed", highlight=False)


@main.command()
@click.option("--clear", is_flag=True, help="Delete every delivered message.")
def mail(clear: bool) -> None:
    """List the messages delivered to the lab mailbox."""
    s = settings()
    if clear:
        click.echo(f"deleted {mailbox.clear(s)} message(s)")
        return
    for m in mailbox.messages(s):
        click.echo(f"{m['Date']}  from {m['From']}  subject {m['Subject']!s}")


@main.command()
@click.option("--backend", type=click.Choice(["auto", "postfix", "sim"]), default=None)
@friendly
def course(backend: str | None) -> None:
    """Start the lab and open the course: JupyterLab on notebooks/, bound to 127.0.0.1."""
    s = settings()
    chosen, why = lab.choose_backend(s, backend)
    st = lab.up(s, chosen)
    console.print(f"[green]lab up[/]: {st['backend']} on {st['host']}:{st['smtp_port']}")
    console.print(lab.backend_explained(chosen, why), highlight=False, soft_wrap=True)
    root = Path(__file__).resolve().parents[2] / "notebooks"  # labsim/cli/commands.py -> the checkout
    if not root.is_dir():
        raise LabError(f"The course notebooks are not at {root}.",
                       hint="Run `make lab` from a full checkout of the postfix-tls-lab repository.")
    env = {**os.environ, **s.with_(backend=st["backend"]).env()}
    # The notebooks type commands as on a server: labsim from the venv, postconf/postfix from /usr/sbin.
    env["PATH"] = lab.shell_path(s)
    cmd = [sys.executable, "-m", "jupyter", "lab", "--ip", s.host, "--port", str(s.jupyter_port),
           "--no-browser", f"--ServerApp.root_dir={root}"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    console.print(f"Opening JupyterLab on http://{s.host}:{s.jupyter_port}/ (the URL with its token follows)")
    console.print("In a terminal of your own:  eval \"$(.venv/bin/labsim env)\"  (the lesson's commands, aimed at "
                  "the lab).  Stop the course with Ctrl-C; the lab keeps running until: make down", highlight=False)
    try:
        code = subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        code = 0
    err.print("[yellow]labsim:[/] JupyterLab stopped. The lab is still running (your work is kept); "
              "stop it with: make down   (or: labsim down)", highlight=False)
    sys.exit(code)


# The other subcommands, each in its module of labsim/cli/: attacker, simulator, checks, classroom.
from .mitm import mitm_command  # noqa: E402  (the attacker in the middle, issue 3)

main.add_command(mitm_command)

from .sim import sim_command  # noqa: E402  (the Postfix 3.7 simulator, issue 3)

main.add_command(sim_command)

from .checks import check_command, solve_command  # noqa: E402  (lab checks and solves, issue 7)

main.add_command(check_command)
main.add_command(solve_command)

from .classroom import classroom_group  # noqa: E402  (per-student labs, issue 7)

main.add_command(classroom_group)


if __name__ == "__main__":  # pragma: no cover
    main()
