# Two commands for a newcomer: `make demo` and `make test`. Both set up .venv on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test demo lint bench docs clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	# a CPU build of torch first: resolved by the package's range, pip would fetch a multi-GB CUDA build
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy simgate_tracking

test: lint
	$(PY) -m pytest -q

demo: $(STAMP)
	$(VENV)/bin/simgate demo

bench: $(STAMP)
	$(PY) -m benchmarks

# the site in site/: README's sections and the API from the docstrings (mkdocs comes with the `docs` extra, in `dev`)
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) build dist *.egg-info runs
