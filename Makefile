# Prompt Cluster. Quick start (README): `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PYTHON ?= python3
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# Scenarios live in molecule/ at the top of the collection, not in extensions/molecule.
export MOLECULE_GLOB := molecule/*/molecule.yml
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Every playbook run ends with its wall time; scripts/molecule_timings.py tabulates them.
export ANSIBLE_CALLBACKS_ENABLED ?= ansible.posix.timer

SCENARIOS := $(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))
IMAGES := $(sort $(notdir $(patsubst %/image.env,%,$(wildcard tests/images/*/image.env))))
# Extra checks of `make test`, appended by the fragments in mk/ (service tests, image smoke test).
CHECKS := lint unit

.PHONY: help setup packages venv engine images lint unit docs build test demo demo-clean \
        $(addprefix molecule-,$(SCENARIOS))

help: ## Show the targets
	@grep -hE '^[a-z][a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'
	@printf '  %-16s %s\n' 'molecule-<name>' 'One Molecule scenario: $(SCENARIOS)'

setup: packages venv engine images ## Install everything the demo and the tests need

packages: ## Install the Debian/Ubuntu packages (docker.io, debootstrap, redis, postgresql, etcd)
	@scripts/ensure-packages.sh

venv: $(VENV)/.installed ## Create .venv with the pinned tools of requirements.txt

$(VENV)/.installed: requirements.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r requirements.txt
	@touch $@

engine: ## Start a Docker engine when none answers
	@scripts/ensure-engine.sh

images: engine ## Build the local test host images (only when their recipe changed)
	@for image in $(IMAGES); do tests/images/build.sh $$image || exit 1; done

lint: venv ## yamllint, ansible-lint (production profile), ruff, mypy
	yamllint --strict .
	ansible-lint
	ruff check scripts plugins tests molecule
	ruff format --check scripts plugins tests molecule
	mypy

unit: venv ## Collection-level tests (role interfaces, generated docs, build artifact)
	pytest -q tests/unit

docs: venv ## Regenerate the variables reference from the roles' argument specs
	$(VENV)/bin/python scripts/gen_role_docs.py

build: venv ## Build the collection tarball into build/
	ansible-galaxy collection build --force --output-path build

$(addprefix molecule-,$(SCENARIOS)): molecule-%: venv images
	molecule test -s $*

test: setup ## Set up everything, then run every check (what CI runs)
	@scripts/run-checks.sh $(CHECKS) $(addprefix molecule-,$(SCENARIOS))

# Extra arguments of the demo's playbook runs, e.g. DEMO_ARGS="-e local_nodes_privileged=true".
DEMO_ARGS ?=

demo: setup ## Create the local nodes (inventory/local) and run site.yml on them
	ansible-playbook playbooks/local_nodes.yml $(DEMO_ARGS)
	ansible-playbook site.yml $(DEMO_ARGS)

demo-clean: venv ## Remove the local demo nodes, their network and the demo's throwaway secrets
	ansible-playbook playbooks/local_nodes.yml -e local_nodes_state=absent

-include $(sort $(wildcard mk/*.mk))
