# The two commands of the README. Everything else is a detail of these.
.PHONY: lab test setup setup-test site down

# Starts the lab (it says which backend it chose, and why), then the course in JupyterLab.
lab: setup
	.venv/bin/labsim course

test: setup-test
	bash scripts/test.sh

# Stop every process of the lab (its files stay): what stopping the course leaves running.
down:
	@if [ -x .venv/bin/labsim ]; then .venv/bin/labsim down; else echo "no .venv yet: nothing of the lab runs"; fi

setup:
	bash scripts/setup.sh

setup-test:
	bash scripts/setup.sh --test

site: setup
	.venv/bin/mkdocs build --strict
