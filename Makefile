# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test install benchmark clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# pyradiomics has no wheel for Python >= 3.10: build it against the numpy and versioneer already installed.
$(STAMP): $(PY) pyproject.toml
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q numpy versioneer
	$(PIP) install -q --no-build-isolation pyradiomics
	$(PIP) install -q -e .
	touch $@

$(TEST_STAMP): $(STAMP)
	$(PIP) install -q -e ".[test]"
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/cttime demo --out cttime-demo

test: $(TEST_STAMP)
	$(PY) -m pytest -q

benchmark: $(TEST_STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) cttime-demo .pytest_cache
