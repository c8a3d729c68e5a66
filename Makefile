# The project's entry points. `make demo` and `make test` are the README's two commands.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
SPEC ?= specs/gptj-v5e-2x2.yaml
# `make install` links $(BINDIR)/saxctl to this checkout's saxctl (editable: it runs this checkout's code).
BINDIR ?= $(HOME)/.local/bin

.PHONY: venv demo test bench chaos fidelity constraints install uninstall clean

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

# The peers' tools and the plots (the `bench` extra: Ansible, matplotlib), only for benchmarks.
$(VENV)/.bench-installed: $(VENV)/.installed
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,bench]'
	touch $@

bench: $(VENV)/.bench-installed
	$(PY) -m bench

# Seeded faults, kill -9 and concurrent applies on the demo spec, checked by listing the sandbox (long: not in `test`).
# CHAOS_ARGS narrows it, e.g. CHAOS_ARGS="--seeds 1 --rates 5 --kills 3"; each failed run prints its replay command.
chaos: venv
	$(PY) -m bench.chaos $(CHAOS_ARGS)

# For every API method saxctl calls: who serves it in the sandbox, what checks it, which error cases tests exercise.
fidelity: venv
	$(PY) -m bench.fidelity

# Re-pin: resolve pyproject.toml's ranges afresh in a scratch venv and write the exact versions.
constraints:
	rm -rf .venv-pin && $(PYTHON) -m venv .venv-pin && .venv-pin/bin/pip install --quiet -e '.[test,bench]'
	{ sed -n '1,2p' constraints.txt; .venv-pin/bin/pip freeze --exclude-editable; .venv-pin/bin/pip freeze --all | grep '^setuptools=='; } > constraints.txt.new
	mv constraints.txt.new constraints.txt && rm -rf .venv-pin


install: venv
	mkdir -p $(BINDIR)
	ln -sfn $(CURDIR)/$(VENV)/bin/saxctl $(BINDIR)/saxctl
	@echo "linked $(BINDIR)/saxctl -> $(CURDIR)/$(VENV)/bin/saxctl"
	@case ":$$PATH:" in *":$(BINDIR):"*) ;; *) echo "note: $(BINDIR) is not on your PATH; add it, e.g. export PATH=\"$(BINDIR):\$$PATH\"";; esac

uninstall:  # only a link into this checkout: a saxctl installed otherwise stays
	@if [ "$$(readlink $(BINDIR)/saxctl)" = "$(CURDIR)/$(VENV)/bin/saxctl" ]; then rm $(BINDIR)/saxctl && echo "removed $(BINDIR)/saxctl"; \
	else echo "$(BINDIR)/saxctl is not a link to this checkout: left alone"; fi

clean:  # stops this checkout's sandbox first: its emulators would outlive their deleted state dir
	-[ -x $(VENV)/bin/saxctl ] && env -u SAXCTL_SANDBOX_DIR $(VENV)/bin/saxctl sandbox down
	rm -rf $(VENV) .sandbox
