# The project's entry points. `make demo` and `make test` are the README's two commands.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
SPEC ?= specs/gptj-v5e-2x2.yaml

.PHONY: venv demo test bench constraints clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

venv: $(VENV)/.installed

demo: venv
	bash examples/sandbox-demo.sh $(SPEC)

test: venv
	$(PY) -m pytest

bench: venv
	$(PY) -m bench

# Re-pin: resolve pyproject.toml's ranges afresh in a scratch venv and write the exact versions.
constraints:
	rm -rf .venv-pin && $(PYTHON) -m venv .venv-pin && .venv-pin/bin/pip install --quiet -e '.[test]'
	{ sed -n '1,2p' constraints.txt; .venv-pin/bin/pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt && rm -rf .venv-pin

clean:
	rm -rf $(VENV) .sandbox
