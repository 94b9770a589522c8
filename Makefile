# Two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The extras `inspectorate demo` imports (comma-separated; empty: the core package only).
# The demo's own test (tests/test_makefile.py) runs it with every other extra missing, so a
# demo step that starts needing one (a testbed run needs `testbed`) fails there until it
# is added here. `make install` / `make test` install every extra regardless.
DEMO_EXTRAS ?= testbed
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: demo test test-fast install lint wheel-check bench clean

$(STAMP): pyproject.toml setup.py src/inspectorate/trace/_ccanon.c src/inspectorate/trace/_cjsonl.c src/inspectorate/trace/_ckernels.c src/inspectorate/trace/_cfloat.h src/inspectorate/trace/_csha.h src/inspectorate/trace/_cguard.h src/inspectorate/trace/_cdict.h
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	command -v bwrap >/dev/null || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -qq && apt-get install -y -qq bubblewrap; else echo "note: the red-team sandbox needs bubblewrap (bwrap): sudo apt-get install bubblewrap"; fi; }
	command -v ip >/dev/null || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -qq && apt-get install -y -qq iproute2; else echo "note: inspectorate capture needs iproute2 (ip): sudo apt-get install iproute2"; fi; }
	command -v chromium >/dev/null || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -qq && apt-get install -y -qq chromium; else echo "note: the report's browser test needs chromium: sudo apt-get install chromium"; fi; }
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev,testbed,scale,agent,calibrate,sign,report,inspect]'
	touch $(STAMP) $(DEMO_STAMP)

# The demo's set only: no torch, no Dask, no SDKs unless DEMO_EXTRAS names them (the full
# install above covers it too, so after `make install` this does nothing).
$(DEMO_STAMP): pyproject.toml setup.py src/inspectorate/trace/_ccanon.c src/inspectorate/trace/_cjsonl.c src/inspectorate/trace/_ckernels.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.$(if $(strip $(DEMO_EXTRAS)),[$(strip $(DEMO_EXTRAS))])'
	touch $(DEMO_STAMP)

install: $(STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/inspectorate demo

test: $(STAMP)
	$(BIN)/python -m pytest --durations=25

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

# The package as a user gets it: a wheel in a fresh venv outside the checkout, run from another directory.
wheel-check: $(STAMP)
	rm -rf build/wheel-check && mkdir -p build/wheel-check
	$(BIN)/python -m pip wheel -q --no-deps -w build/wheel-check .
	$(PYTHON) -m venv build/wheel-check/venv
	build/wheel-check/venv/bin/python -m pip install -q build/wheel-check/inspectorate-*.whl
	cd "$$(mktemp -d)" && ABS=$(CURDIR)/build/wheel-check/venv/bin && \
	  $$ABS/inspectorate demo > demo.log && tail -3 demo.log && \
	  T=$$($$ABS/python -c 'from inspectorate.data import seed_path; print(seed_path("legit_finetune"))') && \
	  C=$$($$ABS/python -c 'from inspectorate.data import commitment_path as c; print(c("frontier-training-cap"))') && \
	  $$ABS/inspectorate check "$$T" --commitment "$$C" && test -z "$$(ls -A | grep -v demo.log)"

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

bench: $(STAMP)
	$(BIN)/python bench/check_throughput.py --sizes 100000 1000000

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .hypothesis
