# make run   - install what is missing, build the default kernel and image, run the scenarios
# make test  - the same set-up, then the whole test suite
PYTHON ?= python3
VENV   := .venv
RVH    := $(VENV)/bin/rvharness
STAMP  := $(VENV)/.installed

.PHONY: setup run test bench clean

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
	$(VENV)/bin/pytest -q tests

bench: setup
	$(VENV)/bin/python bench/boot_overhead

clean:
	rm -rf $(VENV) rvharness-out
