# medbench — every target sets itself up: a fresh clone needs only `make run` or `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NATIVE := $(wildcard _native/*.pyx _native/*.pxd _native/*.h _native/sha256*.c)
EXTRAS ?= dev,notebooks,fhir,fuzz,gateway

.PHONY: run test test-pure test-native lint typecheck bench bench-check bench-cluster validate lab soak fuzz mutants native clean futures

# --- set-up -----------------------------------------------------------------------------------
$(STAMP): pyproject.toml setup.py $(NATIVE)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip "setuptools>=69" wheel "Cython>=3.0"
	MEDBENCH_REQUIRE_NATIVE=$${MEDBENCH_REQUIRE_NATIVE:-0} \
	  $(PY) -m pip install --quiet --no-build-isolation -e ".[$(EXTRAS)]"
	@# MEDBENCH_REQUIRE_NATIVE=1 (CI): a native core that did not load stops make here.
	if [ "$${MEDBENCH_REQUIRE_NATIVE:-0}" = 1 ]; then \
	  $(PY) -m medbench.backend --require-native; \
	else \
	  $(PY) -m medbench.backend --require-native || \
	    echo "WARNING: native core did not load; running on the pure-Python reference."; \
	fi
	touch $(STAMP)

native: $(STAMP)
	$(PY) setup.py --quiet build_ext --inplace

# --- the main job ------------------------------------------------------------------------------
run: $(STAMP)
	$(PY) -m medbench reproduce --out reports/latest
	$(PY) -m medbench demo referral --seed 0 --out reports/latest/referral.txt
	@echo "referral walk-through (docs/medical-chain.md §1.7) written to reports/latest/referral.txt"

# the full PBFT / HotStuff / Raft comparison (n = 4 ... 100, three seeds; docs/futures is a copy)
futures: $(STAMP)
	$(PY) -m medbench.study.futures --preset full --out reports/futures

# --- every test: both backends, lint, types, notebooks, benchmark gate --------------------------
test: $(STAMP) lint typecheck test-native test-pure bench-check

test-native: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow"

test-pure: $(STAMP)
	MEDBENCH_PURE_PYTHON=1 $(PY) -m pytest -q -p no:cacheprovider -m "not slow"

lint: $(STAMP)
	$(PY) -m ruff check medbench tests benchmarks fuzz setup.py
	$(PY) -m ruff format --check medbench tests benchmarks fuzz setup.py
	$(VENV)/bin/lint-imports --no-cache

typecheck: $(STAMP)
	$(PY) -m mypy

bench: $(STAMP)
	mkdir -p .benchmarks
	$(PY) -m pytest benchmarks -q -p no:cacheprovider --benchmark-only \
	  --benchmark-json=.benchmarks/latest.json
	$(PY) -m benchmarks.gate report .benchmarks/latest.json

bench-check: $(STAMP)
	mkdir -p .benchmarks
	$(PY) -m pytest benchmarks -q -p no:cacheprovider --benchmark-only -m "not full" \
	  --benchmark-json=.benchmarks/check.json
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

soak: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -m slow

# Coverage-guided fuzzing (atheris): every decoder and two node step()s, native and pure backends,
# FUZZ_SECONDS per target and backend (x4 for the step() targets), FUZZ_TOTAL at most, at least
# FUZZ_MIN_EXECS inputs in all; fails on any finding (fuzz/driver.py).
FUZZ_SECONDS   ?= 10
FUZZ_TOTAL     ?= 1800
FUZZ_MIN_EXECS ?= 1000000
fuzz: $(STAMP)
	$(PY) -m fuzz all --per-target $(FUZZ_SECONDS) --total $(FUZZ_TOTAL) \
	  --min-execs $(FUZZ_MIN_EXECS) $(FUZZ_ARGS)

# the mutation gate: every catalogued protocol bug (tests/mutation/catalogue.py) applied to a
# scratch copy of the package and run against the adversary's full plan; the kill table is
# printed and kept in reports/mutants.md; fails unless every mutant is killed
mutants: $(STAMP)
	$(PY) tests/mutation/runner.py --plan full --jobs 2 --table reports/mutants.md

lab: $(STAMP)
	$(PY) -m jupyter lab --ip=127.0.0.1 --no-browser notebooks

clean:
	rm -rf $(VENV) build .benchmarks medbench/_native/*.so
	rm -f _native/hashing.c _native/merkle.c _native/quorum.c
