# The two commands of the README: `make run` and `make test`. Both set up what they need.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint setup tools dashboards

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/rtctl tui --demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy --strict rtctl simulator

tools:
	scripts/ensure-tools.sh

# deploy/grafana/dashboards/*.json from rtctl/observability/dashboards.py
dashboards: $(STAMP)
	$(PY) -m rtctl.observability.grafana

test: lint tools
	$(VENV)/bin/pytest
