# Two entry points for a fresh machine: `make demo` and `make test`; `make bench` rewrites bench/RESULTS.md.
# Both create .venv and install kinetoscope (editable) with what the tests need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= out

.PHONY: demo test test-all test-docs bench bench-smoke setup clean proto

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip uninstall --quiet -y opencv-python-headless opencv-python  # cv2 now comes from opencv-contrib
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/kinetoscope demo --out $(OUT)

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ''

# README.md and docs/*.md run as written (their slow lines too with -m '')
test-docs: $(STAMP)
	$(BIN)/python -m pytest -q tests/docs

# Every benchmark in one process run (about 12 minutes on 2 cores); installs the Lucent peer into .venv first.
bench: $(STAMP)
	bash bench/peers/install_lucent.sh
	$(BIN)/python bench/run_all.py

bench-smoke: $(STAMP)
	$(BIN)/python bench/run_all.py --smoke

clean:
	rm -rf $(VENV) $(OUT)

proto: $(STAMP)
	cd proto && ../$(BIN)/python -m grpc_tools.protoc -I. --python_out=. --grpc_python_out=. --pyi_out=. kinetoscope/v1/*.proto
