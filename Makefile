# The two commands of the README: `make run` starts the system, `make test` runs every test.
# Both set up what is missing first (a virtualenv with pinned packages, Chromium for tests).

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
RECOGNIZERS ?= 2
ARGS ?=

.PHONY: install run test lint unit bench accuracy calibrate evaluate definitions fast-dlib

$(STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip "setuptools<81" wheel
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[all,dev]"
	# face_recognition's metadata asks for `dlib` (a source build); dlib-bin above is that library, prebuilt.
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt --no-deps face-recognition
	touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) scripts/run_local.py --recognizers $(RECOGNIZERS) $(if $(SOURCE),--source "$(SOURCE)") $(ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy services scripts bench harness

test: install lint
	scripts/ensure_chromium.sh
	scripts/ensure_rabbitmq_plugins.sh
	$(PY) -m pytest $(ARGS)

unit: install
	$(PY) -m pytest tests/unit $(ARGS)

definitions: install
	$(PY) -m services.common.topology > rabbitmq/definitions.json

# Speed, side by side in one run (see README, "Speed and accuracy"); ARGS="--help" for options.
bench: install
	$(PY) -m bench.benchmark --json artifacts/benchmark.json $(ARGS)

# Accuracy on a folder of labeled photos, <identity>/<photo> (default: the shared faces).
accuracy: install
	$(PY) -m bench.accuracy $(or $(FOLDER),../shared/faces) --png artifacts/accuracy.png --json artifacts/accuracy.json $(ARGS)

# The naming rule at school scale: the track decision's false accepts and rejects against
# the number enrolled, on ../shared/faces-lfw (encodings cached in artifacts/calibration).
calibrate: install
	$(PY) -m bench.accuracy.calibrate $(or $(FOLDER),../shared/faces-lfw) --json artifacts/calibration.json $(ARGS)

# A whole synthetic lesson (bench/lessons, cached by SEED in artifacts/lessons/) through the real
# system with 1, 2 and 4 recognizers at 1x and 2x, side by side; ARGS="--help" for options.
evaluate: install
	$(PY) -m bench.lessons --preset full --seed $(or $(SEED),1) --out artifacts/lessons
	$(PY) -m bench.evaluate --lesson artifacts/lessons/full-seed$(or $(SEED),1) --recognizers 1,2,4 --speed 1,2 \
		--min-face-px $(or $(MIN_FACE_PX),40) --json artifacts/evaluate.json $(ARGS)

# Optional: dlib compiled for this CPU against OpenBLAS, ~6x faster encodings (10-15 min once).
fast-dlib: install
	scripts/build_fast_dlib.sh
