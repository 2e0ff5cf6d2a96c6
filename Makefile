# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test install benchmark demo-reference clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# pyradiomics has no wheel for Python >= 3.10 (and its 3.9 wheel needs numpy 1.x): build it from source
# against the numpy and versioneer already installed.
$(STAMP): $(PY) pyproject.toml
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q numpy versioneer
	$(PIP) install -q --no-build-isolation --no-binary pyradiomics pyradiomics
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

# Every benchmark in turn (minutes); each prints its figures. Speed targets live here, not in tests.
benchmark: $(TEST_STAMP)
	set -e; for script in benchmarks/bench_*.py; do echo "== $$script"; $(PY) $$script; done

# Rebuild the demo reference from the 36 shared sarcoma CTs (../shared/data/sts-ct).
SHARED_STS ?= ../shared/data/sts-ct
demo-reference: $(STAMP)
	mkdir -p build
	{ echo "patient_id,timepoint,image,segmentation"; for d in $(abspath $(SHARED_STS))/STS_*; do \
	  echo "$$(basename $$d),BS,$$d/CT_image.nii.gz,$$d/CT_mask.nii.gz"; done; } > build/sts-manifest.csv
	$(VENV)/bin/cttime cohort build/sts-manifest.csv --standardize cohort --no-segmentation --out build/sts-run
	$(VENV)/bin/cttime reference build build/sts-run/lesions.csv --demo \
	  --source "demo-sts: 36 soft-tissue sarcomas of the extremities, IBSI/TCIA" \
	  -o CTTime/Resources/References/demo-sts-reference.json

clean:
	rm -rf $(VENV) cttime-demo .pytest_cache
