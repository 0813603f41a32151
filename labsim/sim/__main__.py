"""``python -m labsim.sim --config-dir DIR --listen 127.0.0.1:PORT``: what ``labsim.backends.sim.start`` runs."""

from ..cli.sim import sim_command  # the one click command of the simulator, in the command layer

if __name__ == "__main__":
    sim_command(prog_name="python -m labsim.sim")
