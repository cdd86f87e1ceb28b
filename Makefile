# Two commands matter: `make run` (the local stack with the seed users) and `make test`.
# Every setting is an environment variable and passes straight through, e.g.
#   TIMELINE_CELEBRITY_THRESHOLD=5 make run
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run stop status lint test test-unit test-integration test-e2e test-faults images venv logs events replay shards bench bench-fleet capacity

run: ## start everything locally (installs what is missing), then print the seed curls
	@bash deploy/local/stack.sh up
	@bash deploy/local/seed-curls.sh

stop: ## stop everything `make run` started
	@bash deploy/local/stack.sh down

status:
	@bash deploy/local/stack.sh status

lint: venv ## ruff (lint and format), mypy on the three packages, shellcheck on every script, promtool on the alerting rules
	@echo "[lint] ruff check"; $(VENV)/bin/ruff check .
	@echo "[lint] ruff format --check"; $(VENV)/bin/ruff format --check .
	@echo "[lint] mypy"; $(VENV)/bin/mypy
	@command -v shellcheck >/dev/null && command -v promtool >/dev/null || bash deploy/local/install.sh
	@echo "[lint] shellcheck"; git ls-files -z '*.sh' .ci/run | xargs -0 shellcheck -x
	@echo "[lint] promtool check rules"; promtool check rules deploy/observability/alerts.yml >/dev/null
	@echo "[lint] clean"

test: lint ## make lint, then bring up a separate test stack, run every test, stop it again
	@bash deploy/local/run-tests.sh tests

test-unit: venv ## the pure unit tests only (no servers needed)
	@$(PY) -m pytest tests/unit -q

test-integration:
	@bash deploy/local/run-tests.sh tests/integration

test-e2e:
	@bash deploy/local/run-tests.sh tests/e2e

test-faults: ## the fault suite alone (it is part of `make test` too)
	@bash deploy/local/run-tests.sh tests/faults

images: venv ## build both images without Docker (buildah, offline), run their processes against the stack in force
	@bash deploy/images/build.sh
	@bash deploy/images/check.sh

events: venv ## topics with offsets and lag; with TOPIC=tweets.v1, tail that topic as JSON lines
	@source deploy/local/env.sh && if [ -n "$(TOPIC)" ]; then \
		$(PY) -m timeline.tools.events tail "$(TOPIC)" $(if $(FROM_BEGINNING),--from-beginning); \
	else $(PY) -m timeline.tools.events list; fi

replay: venv ## apply the dead-letter topic again: make replay [FROM=offset] [TO=offset] [KEY=user-id] [DRY_RUN=1]
	@source deploy/local/env.sh && $(PY) -m timeline.tools.replay $(if $(FROM),--from-offset $(FROM)) \
		$(if $(TO),--to-offset $(TO)) $(if $(KEY),--key $(KEY)) $(if $(DRY_RUN),--dry-run)

shards: venv ## grow the PostgreSQL fleet of the local stack: make shards ARGS="status|add-database DSN|move 0-63 --to 2|rebalance|resume|rollback"
	@source deploy/local/env.sh && $(PY) -m users.shards $(or $(ARGS),status)

bench: venv ## measure the running stack (`make run` first; its data is replaced): make bench SCALE=100000
	@bash bench/run.sh

bench-fleet: venv ## add a database and rebalance onto it under a write load (`make run` first); figures in docs/fleet.md
	@bash bench/run.sh bench.fleet

capacity: venv ## the fleet for 245M daily users from docs/benchmarks.json (flags: .venv/bin/python -m bench.capacity --help)
	@.venv/bin/python -m bench.capacity

logs: ## follow every log of the local stack
	@tail -F $${STACK_DIR:-.local}/logs/*.log

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt shared_schemas/pyproject.toml users_service/pyproject.toml timeline_service/pyproject.toml
	@echo "[make] creating the virtual environment in $(VENV) (pinned: requirements-dev.txt)"
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@$(PY) -m pip install -q --disable-pip-version-check --no-deps -e shared_schemas -e users_service -e timeline_service
	@touch $(STAMP)
