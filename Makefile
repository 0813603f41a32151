# The two commands of the README. Everything else is a detail of these.
.PHONY: lab test setup setup-test site

lab: setup
	.venv/bin/labsim course

test: setup-test
	bash scripts/test.sh

setup:
	bash scripts/setup.sh

setup-test:
	bash scripts/setup.sh --test

site: setup
	.venv/bin/mkdocs build --strict
