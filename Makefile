# The two commands of README.md. Each one sets up .venv on first use.
#   make demo   run the main job on its embedded default
#   make test   lint + the CPU test suite
PY := .venv/bin/python

.PHONY: demo test lint env env-tests

env:
	@tools/bootstrap.sh runtime

env-tests:
	@tools/bootstrap.sh tests

demo: env
	$(PY) projects/toy_world/tools/run_benchmark.py

lint: env-tests
	$(PY) -m ruff check .

test: env-tests lint
	$(PY) -m pytest
