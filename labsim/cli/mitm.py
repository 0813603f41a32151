"""The ``labsim mitm`` command: a thin click layer over ``labsim.mitm``."""

from __future__ import annotations

import time

import click

from .tools import friendly
from ..mitm import DEFAULT_FIND, DEFAULT_REPLACE, MODES, Mitm, _hostport, render
from ..settings import Settings


@click.command("mitm")
@click.option("--listen", metavar="HOST:PORT", default=None,
              help="Where clients connect (default 127.0.0.1:$LABSIM_MITM_PORT, 2526).")
@click.option("--upstream", metavar="HOST:PORT", default=None,
              help="The server it relays to (default the lab: 127.0.0.1:$LABSIM_SMTP_PORT, 2525).")
@click.option("--mode", type=click.Choice(MODES), default="observe", show_default=True,
              help="observe: read along; strip: remove STARTTLS; tamper: strip and rewrite the message.")
@click.option("--find", "find", default=DEFAULT_FIND, show_default=True, help="tamper: text to replace.")
@click.option("--replace", "replace", default=DEFAULT_REPLACE, show_default=True, help="tamper: replacement.")
@friendly
def mitm_command(listen: str | None, upstream: str | None, mode: str, find: str, replace: str) -> None:
    """Run an attacker in the middle between SMTP clients and the lab (Ctrl-C stops it)."""
    from rich.console import Console

    console = Console(highlight=False)
    settings = Settings.from_env()
    m = Mitm(
        settings, mode,
        listen=_hostport(listen, "--listen") if listen else None,
        upstream=_hostport(upstream, "--upstream") if upstream else None,
        find=find, replace=replace, on_line=lambda ln: console.print(render(ln)),
    ).start()
    (lh, lp), (uh, up) = m.listen, m.upstream
    console.print(f"[bold]attacker in the middle ({mode})[/]: clients of {lh}:{lp} reach {uh}:{up}")
    body = f" --body '{find}'" if mode == "tamper" else ""
    console.print(f"try: swaks --server {lh}:{lp} --to student@{settings.domain} --tls-optional{body}")
    console.print(f"transcript: {m.log_path}   (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        m.stop()
