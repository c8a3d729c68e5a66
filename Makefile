# The project's entry points. `make demo` and `make test` are the README's two commands.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
SPEC ?= specs/gptj-v5e-2x2.yaml

.PHONY: venv demo test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

demo: venv
	bash examples/sandbox-demo.sh $(SPEC)

test: venv
	$(PY) -m pytest

bench: venv
	$(PY) -m bench

clean:
	rm -rf $(VENV) .sandbox
