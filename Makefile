# Two commands matter: `make demo` and `make test`. Both do their own setup.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench evaluate clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: install
	$(VENV)/bin/propainter-wire demo -o demo_out

test: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check src tests benchmarks

bench: install
	$(PY) benchmarks/bench.py --mode process --engine classic --frames 24 --width 432 --height 240

evaluate: install
	$(VENV)/bin/propainter-wire evaluate -o benchmarks/out/quality

clean:
	rm -rf $(VENV) demo_out benchmarks/out
