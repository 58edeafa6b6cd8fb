# The two commands of the README: `make run` and `make test`. Both set up what they need.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint setup tools dashboards docs spec

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

# docs/protocol.md's generated regions (methods, notifications, codes) from the code
spec: $(STAMP)
	$(PY) -m rtctl.spec docs/protocol.md

# site/ from docs/ (mkdocs.yml); any warning (a dead link, a page out of the nav) fails
docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

test: lint tools
	$(VENV)/bin/pytest
