# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Each creates .venv on first use (torch 2.14.1 + torchvision 0.29.1 and the rest of the stack).

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1
export NO_ALBUMENTATIONS_UPDATE := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 90

.PHONY: demo test install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/domain-augment demo

# The test files run side by side, one per core (pytest-xdist; an e2e test is mostly a chain of
# one-thread stage processes), then the few tests that measure the machine's load, alone.
test: $(STAMP)
	$(PY) -m pytest -q -n auto --dist loadfile --no-loadscope-reorder -m "not alone"
	$(PY) -m pytest -q -m alone

clean:
	rm -rf data/prepared data/synthetic artifacts reports
