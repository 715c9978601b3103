PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test bench clean

$(STAMP): pyproject.toml requirements.lock
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.lock -e .
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/kdvision demo

test: $(STAMP)
	$(BIN)/ruff check kdvision tests benchmarks
	$(BIN)/python -m pytest -q -p no:cacheprovider -n auto

clean:
	rm -rf $(VENV) demo_out
