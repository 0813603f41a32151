"""``python -m labsim.sim --config-dir DIR --listen 127.0.0.1:PORT``: what ``labsim.backends.sim.start`` runs."""

from .cli import sim_command

if __name__ == "__main__":
    sim_command(prog_name="python -m labsim.sim")
