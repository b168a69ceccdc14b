"""gunicorn's settings; gunicorn reads this file from the directory it starts in.

The master imports the app and loads the active models (with their cluster indexes: seconds on a
large catalog) before it forks the workers, so no request pays for the load and the workers share the
model arrays' memory. Each worker serves one request at a time on one BLAS thread: more threads per
request only fight the other workers for the cores.
"""
import os

from recsys_site.env import env_bool

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # before numpy is first imported, by the preloaded app

wsgi_app = "recsys_site.wsgi:application"
preload_app = True
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# A sync worker silent for this long is killed and replaced: a request stuck on a dead dependency frees its
# worker rather than holding it for good. Every request is far below it (recommendations take
# milliseconds, the broker and health probes give up after 0.5 s), so only a hang reaches it.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
# Each worker is replaced after about this many requests, so whatever memory a long-lived process creeps
# up to (allocator fragmentation, caches) is given back. The jitter spreads the restarts, so that the
# workers are never all replaced at once; a new worker forks from the master's loaded models.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "200"))
# gunicorn itself believes X-Forwarded-Proto (and so tells Django a request was HTTPS) from the addresses in
# forwarded_allow_ips, loopback by default: any local process could claim HTTPS. The service believes
# forwarded headers only behind the trusted proxy (settings.TRUSTED_PROXY, README "Production"), which every
# request passes through, wherever it runs (another container): then from anyone, otherwise from no one.
forwarded_allow_ips = "*" if env_bool("TRUSTED_PROXY", False) else ""


def when_ready(server) -> None:
    """Load the models in the master, then close its database connections: each worker opens its own.

    ``gc.freeze()`` then moves everything loaded so far out of the garbage collector's sight: its full
    collections would otherwise walk the models' millions of objects (id maps, vocabularies) in the
    middle of requests, and touch, so copy, the memory the workers share.
    """
    import gc

    from django.db import connections

    from recommendations.model_store import serving_models

    try:
        models = serving_models()
        server.log.info("serving %s", models.serving_versions())
    except Exception:  # a database not migrated yet must not stop the server; requests will say why
        server.log.exception("models not loaded at start; the first request loads them")
    finally:
        connections.close_all()
        gc.freeze()
