# Every target does its own set-up: a fresh clone needs nothing but python3 and make.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYPROJECTS := pyproject.toml drivers/aws/pyproject.toml drivers/tencent/pyproject.toml conformance/pyproject.toml \
              examples/sqlite-driver/pyproject.toml
PKGS   := portable_creds drivers/aws/portable_creds_aws drivers/tencent/portable_creds_tencent \
          conformance/portable_creds_conformance examples/sqlite-driver/portable_creds_sqlite

.PHONY: all venv demo docs test test-deps unit lint conformance conformance-live bench fuzz stress \
        clean

all: lint test

$(STAMP): $(PYPROJECTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]' -e 'drivers/aws[dev]' -e 'drivers/tencent[vendor]' -e conformance \
	    -e examples/sqlite-driver
	touch $(STAMP)

venv: $(STAMP)

# The demo needs the runtime core only: its own small venv (no dev tools, no cloud SDKs). When
# this python's pip can install into another interpreter (pip >= 22.3), the venv is created
# without a pip of its own, which halves the set-up time.
DEMO_VENV  := .venv-demo
DEMO_STAMP := $(DEMO_VENV)/.installed

$(DEMO_STAMP): pyproject.toml
	rm -rf $(DEMO_VENV)
	if $(PYTHON) -m pip --python "$$(command -v $(PYTHON))" --version >/dev/null 2>&1; then \
	  $(PYTHON) -m venv --without-pip $(DEMO_VENV) && \
	  $(PYTHON) -m pip --python $(CURDIR)/$(DEMO_VENV)/bin/python install -q -e .; \
	else \
	  $(PYTHON) -m venv $(DEMO_VENV) && $(DEMO_VENV)/bin/python -m pip install -q -e .; \
	fi
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(DEMO_VENV)/bin/portable-creds demo

# The documentation site (user guide + API reference from the docstrings) into site/.
# --strict: a broken link, a missing page or an unresolvable reference fails the build.
DOCS_STAMP := $(VENV)/.docs-installed

$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install -q -e '.[docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict  # not --quiet: it hides the warnings --strict counts

# The test command of the README and of CI: unit/integration tests, then the conformance runs.
test: $(STAMP) test-deps
	$(PY) -m pytest -q
	$(MAKE) conformance

# The RGW (isolation) tests need Ceph, the completion tests bash/zsh/fish. As root on Debian we
# install what is missing; elsewhere those tests skip with one loud line (RGW: fail when CI=true).
SYSTEM_DEPS := ceph-mon ceph-osd radosgw ceph-common curl zsh fish
test-deps:
	@if ! command -v radosgw >/dev/null 2>&1 || ! command -v zsh >/dev/null 2>&1 \
	     || ! command -v fish >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing $(SYSTEM_DEPS) for the RGW isolation and shell-completion tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends $(SYSTEM_DEPS) >/dev/null; \
	  else \
	    echo "!!! not root: install $(SYSTEM_DEPS), or the RGW and completion tests are skipped"; \
	  fi; \
	fi

unit: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check $(PKGS) tests bench examples tools fuzz conformance/run_all.py
	$(VENV)/bin/mypy $(PKGS)

conformance: $(STAMP)
	$(PY) conformance/run_all.py

# The suite against real clouds (PORTABLE_CREDS_LIVE_AWS / _TENCENT name a profile[:region]);
# without them: one line saying what to set, exit 0. Not part of `make test` (costs money).
# LIVE_ARGS=--keep keeps the throw-away deployment. See docs/live-testing.md.
conformance-live: $(STAMP)
	$(PY) tools/conformance_live.py $(LIVE_ARGS)

bench: $(STAMP)
	$(PY) bench/run_all.py

FUZZ_SECONDS ?= 600

# Coverage-guided fuzzing of the envelope parser (not in CI); findings go to .fuzz/artifacts/.
fuzz: $(STAMP)
	$(PY) -m pip install -q 'atheris>=2.3'
	mkdir -p .fuzz/corpus .fuzz/artifacts
	$(PY) fuzz/fuzz_envelope.py -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=.fuzz/artifacts/ \
	    -print_final_stats=1 .fuzz/corpus

# Long runs of the evidence tests: 100 kills per crash mode, 20,000 ops per backend,
# 3,000 examples per property.
stress: $(STAMP)
	STRESS=1 $(PY) -m pytest -q -s tests/evidence/test_crash.py tests/evidence/test_stress.py \
	    tests/evidence/test_properties.py

clean:
	rm -rf $(VENV) $(DEMO_VENV) build site .mypy_cache .ruff_cache .pytest_cache
