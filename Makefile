# medbench — every target sets itself up: a fresh clone needs only `make run` or `make test`.
# `make run` installs what the reproduction needs (the package and its dependencies);
# `make test` and `make lab` add the extras of TEST_EXTRAS (test tools, notebooks, Parquet, Dask).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-extras
NATIVE := $(wildcard _native/*.pyx _native/*.pxd _native/*.h _native/sha256*.c)
TEST_EXTRAS ?= dev,notebooks,parquet,dask,gateway
# the extras' requirements, one a line, read from pyproject.toml (no reinstall of the package)
extra_reqs = $(PY) -c 'import sys, tomllib; \
  d = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]; \
  print("\n".join(sorted({r for e in sys.argv[1].split(",") for r in d[e]})))' $(1)

.PHONY: run test test-pure test-native lint typecheck bench bench-check bench-cluster validate lab soak fuzz mutants native clean futures

# --- set-up -----------------------------------------------------------------------------------
$(STAMP): pyproject.toml setup.py $(NATIVE)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip "setuptools>=77" wheel "Cython>=3.0"
	MEDBENCH_REQUIRE_NATIVE=$${MEDBENCH_REQUIRE_NATIVE:-0} \
	  $(PY) -m pip install --quiet --no-build-isolation -e .
	@# MEDBENCH_REQUIRE_NATIVE=1 (CI): a native core that did not load stops make here.
	if [ "$${MEDBENCH_REQUIRE_NATIVE:-0}" = 1 ]; then \
	  $(PY) -m medbench.backend --require-native; \
	else \
	  $(PY) -m medbench.backend --require-native || \
	    echo "WARNING: native core did not load; running on the pure-Python reference."; \
	fi
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(call extra_reqs,$(TEST_EXTRAS)) | xargs -d '\n' $(PY) -m pip install --quiet
	touch $(TEST_STAMP)

native: $(STAMP)
	$(PY) setup.py --quiet build_ext --inplace

# --- the main job ------------------------------------------------------------------------------
run: $(STAMP)
	$(PY) -m medbench reproduce --out reports/latest
	$(PY) -m medbench demo referral --seed 0 --out reports/latest/referral.txt \
	  --diagram reports/latest/referral.png --trace-out reports/latest/referral.trace.json \
	  > /dev/null
	@echo "referral walk-through (docs/medical-chain.md §1.7): reports/latest/referral.txt," \
	  "its PBFT round as a diagram: reports/latest/referral.png, every message for Perfetto" \
	  "(ui.perfetto.dev): reports/latest/referral.trace.json"
	@echo "report: reports/latest/README.md"

# the full PBFT / HotStuff / Raft comparison (n = 4 ... 100, three seeds; docs/futures is a copy)
futures: $(STAMP)
	$(PY) -m medbench.study.futures --preset full --out reports/futures

# --- every test: both backends, lint, types, notebooks, benchmark gate --------------------------
test: $(STAMP) lint typecheck test-native test-pure bench-check

test-native: $(TEST_STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow"

test-pure: $(TEST_STAMP)
	MEDBENCH_PURE_PYTHON=1 $(PY) -m pytest -q -p no:cacheprovider -m "not slow and not once"

lint: $(TEST_STAMP)
	$(PY) -m ruff check medbench tests benchmarks fuzz setup.py
	$(PY) -m ruff format --check medbench tests benchmarks fuzz setup.py
	$(VENV)/bin/lint-imports --no-cache

typecheck: $(TEST_STAMP)
	$(PY) -m mypy

bench: $(TEST_STAMP)
	mkdir -p .benchmarks
	$(PY) -m pytest benchmarks -q -p no:cacheprovider --benchmark-only \
	  --benchmark-timer=time.process_time --benchmark-min-time=0.001 --benchmark-json=.benchmarks/latest.json
	$(PY) -m benchmarks.gate report .benchmarks/latest.json

bench-check: $(TEST_STAMP)
	mkdir -p .benchmarks
	$(PY) -m pytest benchmarks -q -p no:cacheprovider --benchmark-only -m "not full" \
	  --benchmark-timer=time.process_time --benchmark-min-time=0.001 --benchmark-json=.benchmarks/check.json
	$(PY) -m benchmarks.gate check .benchmarks/check.json

# --- the real cluster (medbench.runtime): load sweeps and fault scenarios on real processes -------
# Closed loop at 1/16/64 clients (null service and Medical Chain, TLS and plain), an open-loop
# sweep, the fault scenarios, then FHIR create/read through a gateway against the same transactions
# submitted directly; CSV, plots and summaries under reports/cluster/ (~14 min).
bench-cluster: $(STAMP)
	$(PY) -m medbench cluster bench --out reports/cluster/closed --clients 1,16,64 \
	  --services null,medchain --transports tls,plain --duration 10 --warmup 3
	$(PY) -m medbench cluster bench --out reports/cluster/open --mode open \
	  --clients 64 --rates 100,200,400,800,1600 --duration 10 --warmup 3
	$(PY) -m medbench cluster faults --out reports/cluster/faults
	$(PY) -m medbench gateway bench --out reports/cluster/gateway --connections 1,16,64 \
	  --duration 10 --warmup 3
	@cat reports/cluster/closed/summary.md reports/cluster/open/summary.md \
	  reports/cluster/faults/faults.md reports/cluster/gateway/gateway.md

# The simulator calibrated for this host against the real cluster, n = 4 and 7 (~5 min).
validate: $(STAMP)
	$(PY) -m medbench validate --out reports/validate --nodes 4,7

soak: $(TEST_STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -m slow

# Coverage-guided fuzzing (atheris): every decoder and two node step()s, native and pure backends,
# FUZZ_SECONDS per target and backend (x4 for the step() targets), FUZZ_TOTAL at most, at least
# FUZZ_MIN_EXECS inputs in all; fails on any finding (fuzz/driver.py).
FUZZ_SECONDS   ?= 10
FUZZ_TOTAL     ?= 1800
FUZZ_MIN_EXECS ?= 1000000
fuzz: $(TEST_STAMP)
	$(call extra_reqs,fuzz) | xargs -d '\n' $(PY) -m pip install --quiet
	$(PY) -m fuzz all --per-target $(FUZZ_SECONDS) --total $(FUZZ_TOTAL) \
	  --min-execs $(FUZZ_MIN_EXECS) $(FUZZ_ARGS)

# the mutation gate: every catalogued protocol bug (tests/mutation/catalogue.py) applied to a
# scratch copy of the package and run against the adversary's full plan; the kill table is
# printed and kept in reports/mutants.md; fails unless every mutant is killed
mutants: $(TEST_STAMP)
	$(PY) tests/mutation/runner.py --plan full --jobs 2 --table reports/mutants.md

# JupyterLab on 127.0.0.1 with the notebooks (jupytext .py scripts) opening as notebooks: the
# jupytext extension's contents manager reads them, and the settings override beside the
# environment makes "Jupytext Notebook" the default viewer of Python files. --allow-root when
# run as root (containers, CI machines).
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json
lab: $(TEST_STAMP)
	mkdir -p $(dir $(LAB_SETTINGS))
	cp notebooks/jupyterlab-overrides.json $(LAB_SETTINGS)
	$(PY) -m jupyter lab --ip=127.0.0.1 --no-browser \
	  --ServerApp.contents_manager_class=jupytext.TextFileContentsManager \
	  $$( [ "$$(id -u)" = 0 ] && echo --allow-root ) $(LAB_ARGS) notebooks

clean:
	rm -rf $(VENV) build .benchmarks medbench/_native/*.so
	rm -f _native/hashing.c _native/merkle.c _native/quorum.c
