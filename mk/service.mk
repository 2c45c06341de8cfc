# The prompt service (service/): its own venv, lint, tests, image, image smoke test and
# benchmark. Included by the root Makefile; its checks join `make test` through CHECKS.
# Recipes call service/.venv's tools by path: the root Makefile puts the collection's
# .venv first on PATH, and the two venvs pin different tools.

SERVICE_DIR := service
SERVICE_VENV := $(SERVICE_DIR)/.venv
SERVICE_BIN := $(CURDIR)/$(SERVICE_VENV)/bin
SERVICE_BASE_IMAGE ?= promptops/python-base:bookworm
SERVICE_IMAGE ?= promptops/prompt-service:dev
# Extra arguments of the benchmark, e.g. `make service-bench SERVICE_BENCH_ARGS=--quick`.
SERVICE_BENCH_ARGS ?=

CHECKS += service-lint service-test service-smoke

.PHONY: service-venv service-lint service-test service-docs service-image service-smoke \
        service-bench

service-venv: $(SERVICE_VENV)/.installed ## Create service/.venv with the pinned requirements-dev.txt

$(SERVICE_VENV)/.installed: $(SERVICE_DIR)/requirements.txt $(SERVICE_DIR)/requirements-dev.txt
	@test -x $(SERVICE_VENV)/bin/python || $(PYTHON) -m venv $(SERVICE_VENV)
	$(SERVICE_VENV)/bin/pip install --quiet -r $(SERVICE_DIR)/requirements-dev.txt
	@touch $@

service-lint: service-venv ## Prompt service: ruff check, ruff format --check, mypy --strict
	cd $(SERVICE_DIR) && $(SERVICE_BIN)/ruff check .
	cd $(SERVICE_DIR) && $(SERVICE_BIN)/ruff format --check .
	cd $(SERVICE_DIR) && $(SERVICE_BIN)/mypy

service-test: service-venv ## Prompt service tests (real Redis, PostgreSQL, test upstream)
	cd $(SERVICE_DIR) && $(SERVICE_BIN)/python -m pytest -q

service-docs: service-venv ## Regenerate the settings and metrics tables of service/README.md
	cd $(SERVICE_DIR) && $(SERVICE_BIN)/python scripts/gen_docs.py

service-image: images ## Build the prompt service image from the local base image
	BASE_IMAGE=$(SERVICE_BASE_IMAGE) IMAGE=$(SERVICE_IMAGE) $(SERVICE_DIR)/scripts/build_image.sh

service-smoke: service-image ## Run the image read-only as uid 10001: /health, /v1/generate
	IMAGE=$(SERVICE_IMAGE) $(SERVICE_DIR)/scripts/smoke_image.sh

service-bench: service-venv ## Prompt service benchmark (loopback, a few minutes; not in test)
	cd $(SERVICE_DIR) && $(SERVICE_BIN)/python bench/run_bench.py $(SERVICE_BENCH_ARGS)
