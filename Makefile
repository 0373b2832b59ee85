# Two commands for a new user: `make run` and `make test`. Both create .venv
# from the lock first if it is missing or older than the lock.
PYTHON ?= python3.11
VENV := .venv
VENV_PY := $(VENV)/bin/python
LOCK := requirements/requirements.lock
# Test processes (pytest-xdist, whole modules per process: a module's pipeline
# runs are shared by its tests). 2 = this project's CI machine's cores.
TEST_WORKERS ?= 2
XDIST := -n $(TEST_WORKERS) --dist loadfile
STAMP := $(VENV)/.installed

.PHONY: setup chromium run test test-full benchmark lint format lock clean

setup: $(STAMP)

# The lock pins tfx/ml-pipelines-sdk, which declare Requires-Python <3.11 but
# work on 3.11, so it is installed as resolved: no deps, no Python check.
$(STAMP): $(LOCK) setup.py
	test -x $(VENV_PY) || $(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install --quiet --no-deps --ignore-requires-python -r $(LOCK)
	$(VENV_PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(VENV_PY) -m pip check
	touch $(STAMP)

run: $(STAMP)
	$(VENV_PY) local_runner.py $(ARGS)

lint: $(STAMP)
	$(VENV_PY) -m ruff check .
	$(VENV_PY) -m ruff format --check .

format: $(STAMP)
	$(VENV_PY) -m ruff format .
	$(VENV_PY) -m ruff check --fix .

# The run report is tested in headless Chromium: Debian's, installed if missing.
chromium:
	@command -v chromium >/dev/null || { \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo -n"; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

test: lint chromium
	$(VENV_PY) -m pytest $(XDIST) $(PYTEST_ARGS)

# Every tier `make test` leaves out: the small pipeline runs (-m e2e), the
# full-data run, the Beam and benchmark runs (-m slow) and the compiled spec
# on the strict KFP launcher (-m kfp). Times: benchmarks/README.md.
test-full: $(STAMP) chromium
	$(VENV_PY) -m pytest -m "e2e or full_data or slow or kfp" $(XDIST) $(PYTEST_ARGS)

# Performance figures (about 10 minutes); see benchmarks/README.md.
benchmark: $(STAMP)
	$(VENV_PY) benchmarks/benchmark.py --json benchmarks/latest.json

lock:
	$(PYTHON) scripts/compile_lock.py

clean:
	rm -rf $(VENV) output
