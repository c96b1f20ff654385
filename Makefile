# Bazaar: the two commands that always work are `make up` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROJECTS := common auth_service catalog_service order_service profile_service gateway devtools
STAMP := $(VENV)/.installed

.PHONY: help install up down test openapi lint format instance bench bench-gateway bench-broker bench-revocation bench-connections load chart-check service lock clean soak dashboards

help:
	@echo "make up             run the whole platform (gateway on http://127.0.0.1:8000)"
	@echo "make down           stop the platform make up runs from this checkout (from any shell)"
	@echo "make test           lint, migration check, every service's tests and the end-to-end suite"
	@echo "make instance SERVICE=catalog   one more instance of a service into the running platform"
	@echo "make bench          whole-platform benchmark: reads, checkout, sign-in (needs DATABASE_URL=postgres://…)"
	@echo "make bench-gateway  gateway throughput/latency benchmark"
	@echo "make bench-broker   Redis vs RabbitMQ: checkout throughput, reserve latency, redelivery, outage"
	@echo "make bench-revocation  CPU per request of the revocation lookup, gateway and service, with and without"
	@echo "make bench-connections  ten instances of every service behind the chart's PgBouncer: PostgreSQL connections"
	@echo "make load           Locust load test against a running platform (make up first)"
	@echo "make chart-check    lint, render and validate the Helm chart"
	@echo "make dashboards     regenerate the Grafana dashboards (charts/bazaar/files/dashboards) from their code"
	@echo "make soak           5-minute consistency soak: a random instance or worker killed every minute"
	@echo "make lock           re-resolve requirements/runtime.lock (the images' hashed dependencies)"
	@echo "make service NAME=reviews   a new Django service laid out like the others, wired in everywhere"
	@echo "make openapi        rewrite docs/openapi.json, the public API's snapshot (breaking changes: docs/openapi-intended-breaks.txt)"
	@echo "make lint | format | clean"

$(STAMP): requirements/constraints.txt requirements/dev.txt $(foreach p,$(PROJECTS),$(p)/pyproject.toml)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# Fast on a fresh clone: pip installs only setuptools and uv (pinned in constraints.txt), and
	@# uv installs the rest, in parallel and from its cache (measured on this machine: 100 s wall,
	@# 13 s CPU where pip took over 8 minutes and 55 s CPU, both at a load average of ~35); no
	@# isolated build environment per project; .pyc files written on first import.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements/constraints.txt "setuptools>=68" uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-build-isolation \
		-c requirements/constraints.txt -r requirements/dev.txt $(foreach p,$(PROJECTS),-e ./$(p))
	touch $(STAMP)

install: $(STAMP)

up: install
	$(BIN)/python -m bazaar_devtools.up

down: install
	$(BIN)/python -m bazaar_devtools.down

test: install
	$(BIN)/python -m bazaar_devtools.check

# Five minutes of shopping while a random instance or worker is killed every minute (opt-in).
soak: install
	$(BIN)/python -m bazaar_devtools.check --only e2e -- -m soak -s

# The public API's snapshot, compared on every `make test`: rewrite it after a deliberate change.
openapi: install
	$(BIN)/python -m bazaar_devtools.openapi --write

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

service: install
	@test -n "$(NAME)" || (echo "usage: make service NAME=<name, e.g. reviews> [PACKAGE=review_service]"; exit 2)
	$(BIN)/python -m bazaar_devtools.new_service $(NAME) $(if $(PACKAGE),--package $(PACKAGE))

instance: install
	@test -n "$(SERVICE)" || (echo "usage: make instance SERVICE=<auth|catalog|orders|profiles|gateway>"; exit 2)
	$(BIN)/python -m bazaar_devtools.instance $(SERVICE)

bench: install
	$(BIN)/python -m bazaar_devtools.bench

bench-gateway: install
	$(BIN)/python -m bazaar_devtools.bench_gateway

bench-connections: install
	$(BIN)/python -m bazaar_devtools.bench_connections

bench-broker: install
	$(BIN)/python -m bazaar_devtools.bench_broker

bench-revocation: install
	$(BIN)/python -m bazaar_devtools.bench_revocation

load: install
	$(BIN)/locust -f devtools/locustfile.py --headless --host http://127.0.0.1:$${GATEWAY_PORT:-8000} \
		--users $${USERS:-30} --spawn-rate $${SPAWN_RATE:-10} --run-time $${RUN_TIME:-60s} --only-summary

dashboards: install
	$(BIN)/python -m bazaar_devtools.dashboards

chart-check:
	bash charts/check.sh

# The images install requirements/runtime.lock with --require-hashes. Resolved against PyPI only
# (no local wheel caches or mirrors of this machine), so the hashes are the published files'.
lock: install
	cd requirements && env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_CONSTRAINT PIP_CONFIG_FILE=/dev/null \
		../$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url \
		--no-emit-find-links --index-url https://pypi.org/simple --output-file runtime.lock runtime.in

clean:
	rm -rf var .pytest_cache .ruff_cache
