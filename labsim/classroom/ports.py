"""A classroom's port blocks: student *i* gets ``base + i * stride`` ... ``+ stride - 1``, in ``BLOCK`` order."""

from __future__ import annotations

from ..errors import LabError
from ..ports import is_free
from ..settings import PORTS

#: Port order inside a student's block (offset = position), as the instructor guide lists it.
#: The first ten keep their documented offsets; a port added to ``settings.PORTS`` later comes after them.
_FIRST = ("smtp_port", "mitm_port", "submission_port", "http01_port", "acme_port", "acme_mgmt_port",
          "dns_port", "dns_mgmt_port", "tlsalpn01_port", "jupyter_port")
BLOCK = tuple(a for a in _FIRST if any(a == p for p, _v, _d in PORTS)) + tuple(
    p for p, _v, _d in PORTS if p not in _FIRST)
assert sorted(BLOCK) == sorted(attr for attr, _v, _d in PORTS), "BLOCK must list every lab port once"

DEFAULT_BASE_PORT = 20000
DEFAULT_STRIDE = -(-len(BLOCK) // 10) * 10  # whole tens: 10 while the lab has ten ports


# --- ports -----------------------------------------------------------------------------------------------

def block(base: int, index: int = 0, stride: int = DEFAULT_STRIDE) -> dict[str, int]:
    """The ports of student ``index``: attribute -> port."""
    if stride < len(BLOCK):
        raise LabError(f"A port block of {stride} is too small.", hint=f"Use --stride {len(BLOCK)} or more.")
    first = base + index * stride
    if first < 1024 or first + len(BLOCK) - 1 > 65535:
        raise LabError(f"Port block {first}-{first + len(BLOCK) - 1} is outside 1024-65535.",
                       hint="Choose another --base-port.")
    return {attr: first + i for i, attr in enumerate(BLOCK)}


def block_exports(base: int, index: int = 0, stride: int = DEFAULT_STRIDE) -> str:
    """``export LABSIM_..._PORT=...`` lines for one block (the Binder/JupyterHub start script uses them)."""
    var = {attr: v for attr, v, _d in PORTS}
    return "\n".join(f"export {var[a]}={p}" for a, p in block(base, index, stride).items())


def busy_ports(ports: list[int], host: str = "127.0.0.1") -> list[int]:
    return [p for p in ports if not is_free(p, host)]


def find_base(count: int, stride: int = DEFAULT_STRIDE, start: int = DEFAULT_BASE_PORT, stop: int = 32000,
              host: str = "127.0.0.1") -> int:
    """A base port below the kernel's ephemeral range where ``count`` blocks are all free right now."""
    base = start
    while base + count * stride <= stop:
        ports = [p for i in range(count) for p in block(base, i, stride).values()]
        busy = busy_ports(ports, host)
        if not busy:
            return base
        base = max(busy) + 1  # skip past the last taken port
        base += (-base + start) % stride  # keep blocks aligned to the stride
    raise LabError(f"No {count} free port blocks of {stride} between {start} and {stop}.",
                   hint="Free some ports, or pass --base-port and --stride explicitly.")
