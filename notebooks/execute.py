"""Run the notebooks and store their outputs in place: the outputs nbval later compares against.

    sudo .venv/bin/python notebooks/execute.py                 # every NN-*.ipynb, in order
    sudo .venv/bin/python notebooks/execute.py 03-*.ipynb      # some of them (they run in order)

The outputs are a lesson: they must read as on a learner's lab, with the default ports and root's default
lab home ``/var/lib/labsim``, and without touching a lab that may already run there. So, as root and where
``unshare`` works, the run happens in private mount and network namespaces: a fresh temporary directory is
bind-mounted on ``/var/lib/labsim`` and the default ports are free on a loopback of its own. Elsewhere it
falls back to a fresh ``/var/lib/labsim`` (refusing if one exists) and the default ports (refusing if taken).

The notebooks run with the real Postfix backend (``LABSIM_BACKEND=postfix``) and ``LABSIM_NOTEBOOK_SOLVE=1``
(each exercise's check first applies its solution, so the stored outputs show the solved exercise).
Afterwards the lab is stopped (``labsim down`` and the sending Postfix): nothing is left running.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
HOME = Path("/var/lib/labsim")
INNER = "LABSIM_EXECUTE_INNER"


def notebooks(args: list[str]) -> list[Path]:
    if args:
        return [Path(a).resolve() for a in args]
    return sorted(HERE.glob("[0-9][0-9]-*.ipynb"))


def stop_everything() -> None:
    from labsim import lab, sender
    from labsim.settings import Settings

    s = Settings.from_env()
    sender.down(s)
    lab.down(s)


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def drop_widget_views(nb) -> None:
    """Keep a quiz cell's text, not its widget view: a stored view without its model (state is not stored:
    random ids, and the offline site could not load the widget code) shows "model not found" in JupyterLab
    until the cell runs again. nbval never compares this type (its model id is random)."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if WIDGET_VIEW in out.get("data", {}):
                del out["data"][WIDGET_VIEW]


def run(paths: list[Path], backend: str) -> int:
    import nbformat
    from nbclient import NotebookClient

    env_clean = {k: v for k, v in os.environ.items() if not k.startswith("LABSIM_") and k != "MAIL_CONFIG"}
    os.environ.clear()
    os.environ.update(env_clean)
    os.environ.update({"LABSIM_HOME": str(HOME), "LABSIM_BACKEND": backend, "LABSIM_NOTEBOOK_SOLVE": "1"})
    os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
    status = 0
    try:
        for path in paths:
            t = time.monotonic()
            nb = nbformat.read(path, as_version=4)
            client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(HERE)}},
                                    store_widget_state=False)
            try:
                client.execute()
            except Exception as e:  # noqa: BLE001 - report and go on: the next notebook must run alone anyway
                print(f"FAILED {path.name}: {type(e).__name__}: {str(e)[-2000:]}", file=sys.stderr)
                status = 1
            nb.metadata.pop("widgets", None)
            drop_widget_views(nb)
            nbformat.write(nb, path)
            print(f"{path.name}: {time.monotonic() - t:.1f} s", flush=True)
    finally:
        stop_everything()
    return status


def main(argv: list[str]) -> int:
    backend = os.environ.get("EXECUTE_BACKEND", "postfix")
    paths = notebooks(argv)
    if os.environ.get(INNER):  # inside the namespaces: loopback up, a fresh directory on /var/lib/labsim
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        tmp = Path(tempfile.mkdtemp(prefix="labsim-execute-", dir="/tmp"))
        os.chmod(tmp, 0o711)
        HOME.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "--bind", str(tmp), str(HOME)], check=True)
        try:
            return run(paths, backend)
        finally:
            subprocess.run(["umount", str(HOME)], check=False)
            shutil.rmtree(tmp, ignore_errors=True)
    if os.geteuid() == 0 and shutil.which("unshare") and shutil.which("ip"):
        created = not HOME.exists()
        HOME.mkdir(parents=True, exist_ok=True)  # the mount point
        try:
            proc = subprocess.run(["unshare", "--mount", "--net", "--propagation", "private",
                                   sys.executable, __file__, *map(str, paths)], env={**os.environ, INNER: "1"})
            return proc.returncode
        finally:
            if created:
                try:
                    HOME.rmdir()
                except OSError:
                    pass
    # No namespaces: the real /var/lib/labsim (default for root) and default ports, only if unused.
    from labsim.ports import is_free
    from labsim.settings import PORTS

    if HOME.exists() and any(HOME.iterdir()):
        sys.exit(f"{HOME} already holds a lab; this fallback needs it empty (or run as root with unshare).")
    taken = [f"{d} ({v})" for _a, v, d in PORTS if not is_free(d)]
    if taken:
        sys.exit(f"default ports in use: {', '.join(taken)}")
    try:
        return run(paths, backend)
    finally:
        shutil.rmtree(HOME, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
