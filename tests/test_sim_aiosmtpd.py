"""aiosmtpd is a dependency, not a fork: every private name the simulator touches is checked here.

pyproject.toml pins ``aiosmtpd~=1.4.6``. If an upgrade renames, removes or changes one of the private
names below, this test fails and says which one, before the simulator misbehaves in a lesson. The
server module's docstring says what is overridden and why.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from pathlib import Path

import aiosmtpd
from aiosmtpd.smtp import SMTP

from labsim.sim import server

#: Private methods the simulator overrides or calls, with the parameters it relies on.
PRIVATE_METHODS = {
    "_handle_client": ["self"],  # replaced: Postfix's command loop
    "_set_rset_state": ["self"],  # extended: Postfix's mail_reset (BDAT, SIZE=, queue id)
    "_set_post_data_state": ["self"],  # extended: the BDAT state goes after a message
    "_timeout_cb": ["self"],  # extended: Postfix's timeout reply and log line
    "_reset_timeout": ["self", "duration"],  # called: smtpd_starttls_timeout during the handshake
    "_call_handler_hook": ["self", "command", "args"],  # called: the handler's RCPT/DATA hooks
}
#: Private attributes (set in ``SMTP.__init__``/``connection_made``/``smtp_STARTTLS``) the simulator reads.
PRIVATE_ATTRIBUTES = ("_tls_protocol", "_original_transport", "_smtp_methods", "_reader")


def test_version_is_the_pinned_one() -> None:
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert '"aiosmtpd~=1.4.6"' in pyproject, "pyproject.toml must pin aiosmtpd~=1.4.6"
    assert re.fullmatch(r"1\.4\.\d+", aiosmtpd.__version__), (
        f"aiosmtpd {aiosmtpd.__version__} is outside ~=1.4.6: check every name in tests/test_sim_aiosmtpd.py")


def test_private_methods_the_simulator_touches_are_unchanged() -> None:
    for name, params in PRIVATE_METHODS.items():
        method = getattr(SMTP, name, None)
        assert method is not None, f"aiosmtpd.smtp.SMTP.{name} is gone: labsim/sim/server.py overrides or calls it"
        got = list(inspect.signature(method).parameters)
        assert got == params, f"aiosmtpd.smtp.SMTP.{name}{tuple(got)} changed (the simulator expects {params})"
        if name == "_handle_client":
            assert inspect.iscoroutinefunction(method), "SMTP._handle_client is no longer a coroutine"


def test_private_attributes_the_simulator_reads_exist() -> None:
    init = inspect.getsource(SMTP)
    for name in PRIVATE_ATTRIBUTES:
        assert f"self.{name}" in init, f"aiosmtpd.smtp.SMTP no longer sets self.{name}: labsim/sim/server.py reads it"
    # The STARTTLS machinery the simulator reuses: the handshake via sslproto, the plaintext discarded.
    source = inspect.getsource(SMTP.connection_made)
    assert "self._reader._buffer.clear()" in source, "aiosmtpd no longer discards plaintext after STARTTLS"
    # The pipelining check peeks at StreamReader's buffer: asyncio's private name.
    reader = asyncio.StreamReader()
    assert isinstance(getattr(reader, "_buffer", None), bytearray), "asyncio.StreamReader._buffer changed"


def test_the_overrides_are_the_documented_ones() -> None:
    """The docstring of labsim/sim/server.py names every private method it overrides."""
    doc = server.__doc__ or ""
    overridden = [n for n in PRIVATE_METHODS if n in server.PostfixSMTP.__dict__]
    assert overridden, "the simulator overrides none of the guarded names: update PRIVATE_METHODS"
    for name in overridden:
        assert f"``{name}``" in doc, f"server.py's docstring does not say why it overrides {name}"


def test_the_cached_inspect_answers_as_inspect_does() -> None:
    """server.py replaces aiosmtpd.smtp's ``inspect`` (per-session getmembers and signature, cached per
    class): aiosmtpd must still make exactly those calls, and the cache must answer what inspect would."""
    init = inspect.getsource(SMTP.__init__)
    for call in ("inspect.getmembers(obj)", 'if mname.startswith("auth_")', "inspect.signature(ehlo_hook)"):
        assert call in init, f"aiosmtpd's SMTP.__init__ no longer has {call!r}: see server._ClassCachedInspect"
    import aiosmtpd.smtp

    shim = aiosmtpd.smtp.inspect
    assert isinstance(shim, server._ClassCachedInspect), "labsim.sim.server did not install its inspect"
    from labsim.maincf import MainCf
    from labsim.sim.simconfig import SimConfig
    from tests.sim_fixtures import new_settings, remove_home, write_main_cf

    settings = new_settings()
    try:
        write_main_cf(settings)
        conf = SimConfig.from_maincf(MainCf.load(settings.config_dir, process_name="smtpd"))

        async def build() -> None:
            for _ in range(2):  # the first call fills the cache, the second answers from it
                handler = server.PostfixHandler(conf, None, None)  # type: ignore[arg-type]
                session = server.PostfixSMTP(handler, conf, None)  # type: ignore[arg-type]
                for obj in (session, handler):
                    want = [(n, v) for n, v in inspect.getmembers(obj) if n.startswith("auth_")]
                    assert shim.getmembers(obj) == want
                assert shim.signature(handler.handle_EHLO) == inspect.signature(handler.handle_EHLO)
                assert set(session._auth_methods) == {"LOGIN", "PLAIN"}  # aiosmtpd's built-ins, as without it

        asyncio.run(build())
    finally:
        remove_home(settings)
