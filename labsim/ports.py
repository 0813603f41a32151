"""Port checks: is a port free on the lab's address, and which free ports can a test use."""

from __future__ import annotations

import socket

from .errors import PortInUseError


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port (we can bind it ourselves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def require_free(port: int, variable: str, what: str, host: str = "127.0.0.1") -> None:
    """Raise a PortInUseError naming the port and the variable that moves it."""
    if not is_free(port, host):
        raise PortInUseError(
            f"Port {port} on {host} ({what}) is already in use.",
            hint=f"Stop what listens there (ss -ltnp 'sport = :{port}'), or pick another port: "
            f"export {variable}=<free port>.",
        )


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """n distinct ports that are free right now (the kernel's choice), for tests and classrooms."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def wait_listening(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> bool:
    """Wait until something accepts connections on host:port."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


if __name__ == "__main__":  # pragma: no cover - `eval "$(python -m labsim.ports)"` in scripts/test.sh
    # Print `export LABSIM_...=PORT` for every lab port, each one free right now (the kernel's choice):
    # a lab started from these lines never collides with a student's lab on the default ports.
    from .settings import PORTS

    for (_attr, var, _default), port in zip(PORTS, free_ports(len(PORTS))):
        print(f"export {var}={port}")
