# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
HOST ?= 127.0.0.1
# Demo world size; override e.g. `make demo DEMO_USERS=2000`.
DEMO_USERS ?= 300
DEMO_STARTUPS ?= 120
DEMO_POSITIONS ?= 400
DEMO_INTERACTIONS ?= 8000
# The demo world is small: a few Two-Tower epochs learn what there is to learn.
DEMO_TWO_TOWER_EPOCHS ?= 10

# Tests run under production-like settings (DEBUG off), over plain HTTP.
TEST_ENV := SECRET_KEY=test-only-secret-key-not-for-production SECURE_SSL_REDIRECT=0 DEBUG=0
DEMO_ENV := DEBUG=1 TWO_TOWER_MAX_EPOCHS=$(DEMO_TWO_TOWER_EPOCHS)

.PHONY: demo test schemathesis lint serve clean

# pip prints each package as it is collected, downloaded (with its progress bar) and installed: the first
# install takes minutes (torch is the largest part), and every step of it is on the screen.
PIP_INSTALL := $(PY) -m pip install --progress-bar on --no-input

$(VENV)/.runtime: requirements.txt
	@echo "==> [1/3] A virtual environment in $(VENV)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "==> [2/3] pip itself, up to date"
	$(PIP_INSTALL) --upgrade pip
	@echo "==> [3/3] The service's packages (requirements.txt: Django, numpy, scipy, implicit, torch, ...)"
	$(PIP_INSTALL) -r requirements.txt
	@echo "==> Installed."
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	@echo "==> The test and lint tools (requirements-dev.txt: pytest, Playwright, ruff, ...)"
	$(PIP_INSTALL) -r requirements-dev.txt
	touch $@

demo: $(VENV)/.runtime
	@echo "==> The database's tables"
	$(DEMO_ENV) $(PY) manage.py migrate --no-input
	@echo "==> A demo world (once: kept afterwards)"
	$(DEMO_ENV) $(PY) manage.py seed_demo --if-empty --users $(DEMO_USERS) --startups $(DEMO_STARTUPS) \
		--positions $(DEMO_POSITIONS) --interactions $(DEMO_INTERACTIONS) --seed 0
	@echo "==> Training the five algorithms, phase by phase"
	$(DEMO_ENV) $(PY) manage.py train_models
	@echo "==> The set measured as the API serves it"
	$(DEMO_ENV) $(PY) manage.py evaluate --plot var/evaluation.png
# A week of 100 users' traffic: an experiment of content-only weights against the tuned ones, so that the
# staff online metrics and experiment pages have days of numbers and a winner to show.
	@echo "==> A simulated week of traffic with an experiment"
	$(DEMO_ENV) $(PY) manage.py simulate_traffic --days 7 --users 100 --seed 0 --experiment-weights '{"content_based": 1}'
	$(DEMO_ENV) $(PY) manage.py demo_admin
	@echo "Serving on http://$(HOST):$(PORT)/  (staff pages: /staff/, admin: /admin/ as admin/admin, API: /api/v1/, docs: /api/docs/)"
	$(DEMO_ENV) $(PY) manage.py runserver $(HOST):$(PORT)

test: $(VENV)/.dev
	$(TEST_ENV) $(PY) -m pytest $(PYTEST_ARGS)

# schemathesis against gunicorn on a fresh seeded world, as a developer and as staff (.ci/schemathesis).
schemathesis: $(VENV)/.dev
	$(PY) .ci/schemathesis

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .

clean:
	rm -rf var/ staticfiles/ .pytest_cache/ .ruff_cache/
