# make run   - install what is missing, build the default kernel and image, run the scenarios
# make test  - the same set-up, then the test suite (all but the tests marked slow; make test-slow runs those)
PYTHON ?= python3
VENV   := .venv
RVH    := $(VENV)/bin/rvharness
STAMP  := $(VENV)/.installed

.PHONY: setup run test test-slow bench clean

setup: $(STAMP)
	@scripts/install-host-packages
	$(RVH) fetch

$(STAMP): pyproject.toml
	@scripts/install-host-packages
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $(STAMP)

run: setup
	$(RVH) run scenarios/

test: setup
	$(VENV)/bin/pytest -q -m "not slow" tests

# Tests that need a quiet host and many minutes (pytest marker 'slow').
test-slow: setup
	$(VENV)/bin/pytest -q -m slow tests

bench: setup
	$(VENV)/bin/python bench/boot_overhead

clean:
	rm -rf $(VENV) rvharness-out
