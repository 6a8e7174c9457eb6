# copier-mlops: the template's own tasks. On a fresh machine with only Python:
#   make demo   generate the default project and run its whole lifecycle
#   make test   the whole test suite (rendering tests, then end-to-end runs)
#   PYTEST_ARGS=tests/e2e/test_update.py make test   one file (CI runs each e2e file alone)
.DEFAULT_GOAL := help
# Python caches bytecode, as on a user's machine: the tests start thousands of Python processes
# in generated projects, and some CI images set PYTHONDONTWRITEBYTECODE, which makes each of
# them compile every module it imports anew (the e2e tests took 1.65x the CPU time).
unexport PYTHONDONTWRITEBYTECODE
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c

# uv from PATH; without one, a private copy is installed into .tools/ from PyPI.
UV := $(or $(shell command -v uv 2>/dev/null),.tools/bin/uv)
PYTEST_ARGS ?=
TEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 2) + 1 )))
BUMP_ARGS ?=

.PHONY: help install install-system demo lint test test-fast bench clean bump cookiecutter-json

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/python -m pip install --quiet uv

install: $(UV) ## Install the template's dev environment (copier, pytest, uv, linters)
	$(UV) sync --frozen

install-system: ## Install the system tools the e2e tests use (podman, Node, Azurite, wrk; see .ci/deps.d)
	@for script in .ci/deps.d/*.sh; do [ -e "$$script" ] && bash "$$script"; done; true

demo: install ## Generate the default project into demo/ and run its lifecycle
	$(UV) run python -m harness.demo

lint: install ## Lint the template's own code (ruff) and workflows (check-jsonschema, zizmor --pedantic)
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(UV) run zizmor --offline --pedantic --no-progress .github

# One worker more than cores (the tests wait on their projects' processes often: on 2 cores,
# two workers kept 0.7-1.5 of them busy, three kept both busy and took 21.5 minutes instead
# of 31.8), then the tests marked solo alone, as they measure the machine. Exit 5 of a phase
# is "no test selected there".
# --no-loadscope-reorder: the work goes out in tests/conftest.py's order, longest first
# (xdist otherwise sends the modules with the most tests first, the long journeys last).
test: install install-system ## Run every test: rendering, then end-to-end
	@status=0; $(UV) run pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder -m "not solo" $(PYTEST_ARGS) || status=$$?; \
	solo=0; $(UV) run pytest -m solo $(PYTEST_ARGS) || solo=$$?; \
	for code in $$status $$solo; do [ $$code -eq 0 ] || [ $$code -eq 5 ] || exit $$code; done

test-fast: install ## Only the fast rendering tests
	$(UV) run pytest -n $(TEST_WORKERS) -m "not e2e" $(PYTEST_ARGS)

bench: install install-system ## Benchmarks, each against a baseline run beside it (all run; exit 1 if a target is missed)
	@missed=""; for script in benchmarks/[!_]*.py; do module=$$(basename "$$script" .py); \
		echo "== python -m benchmarks.$$module"; \
		$(UV) run python -m "benchmarks.$$module" || missed="$$missed $$module"; done; \
		if [ -n "$$missed" ]; then echo "targets missed:$$missed" >&2; exit 1; fi

bump: install ## Move the generated project's pins Dependabot cannot see to their newest releases
	$(UV) run python scripts/bump.py $(BUMP_ARGS)

cookiecutter-json: install ## Write cookiecutter.json from copier.yml (after changing a question)
	$(UV) run python scripts/cookiecutter_json.py

clean: ## Remove the demo project and caches
	rm -rf demo .pytest_cache
