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

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

demo: $(VENV)/.runtime
	$(DEMO_ENV) $(PY) manage.py migrate --no-input
	$(DEMO_ENV) $(PY) manage.py seed_demo --if-empty --users $(DEMO_USERS) --startups $(DEMO_STARTUPS) \
		--positions $(DEMO_POSITIONS) --interactions $(DEMO_INTERACTIONS) --seed 0
	$(DEMO_ENV) $(PY) manage.py train_models
	$(DEMO_ENV) $(PY) manage.py evaluate --plot var/evaluation.png
# A week of 100 users' traffic (about 20 s): an experiment of content-only weights against the tuned ones,
# so that the staff online metrics and experiment pages have days of numbers and a winner to show.
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
