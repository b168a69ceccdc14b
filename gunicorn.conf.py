"""gunicorn's settings; gunicorn reads this file from the directory it starts in.

The master imports the app and loads the active models (with their cluster indexes: minutes on a
large catalog) before it forks the workers, so no request pays for the load and the workers share the
model arrays' memory. It then keeps checking the registry as a web process does (every
MODEL_REGISTRY_CHECK_SECONDS): when it has loaded a newly activated set, in its own thread, it rolls the
workers (SIGHUP: with preload_app, gunicorn forks new workers, which hold the new set, and stops the old
ones gracefully, each after its request), so the workers never load a set themselves. Each worker serves
one request at a time on one BLAS thread: more threads per request only fight the other workers for the
cores.
"""
import os
import signal
import threading
import time

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
    Then watch for newly loaded sets, in a thread of the master."""
    from django.db import connections

    from recommendations.model_store import LoadedSetWatch

    watch = LoadedSetWatch()
    try:
        watch.new_set_loaded()
        server.log.info("serving the versions active at start")
    except Exception:  # a database not migrated yet must not stop the server; requests will say why
        server.log.exception("models not loaded at start; the first request loads them")
    finally:
        connections.close_all()
        _freeze_what_is_loaded()
    threading.Thread(target=_roll_workers_on_new_sets, args=(server, watch), name="roll-workers",
                     daemon=True).start()


def post_fork(server, worker) -> None:
    from recommendations.model_store import leave_loads_to_master

    leave_loads_to_master()


# How much lower than the workers the master's loads of new sets run (niceness added to this thread and the
# index-building threads it starts): a load between requests takes the cores only while the workers leave
# them idle, so no request waits for it.
LOAD_NICENESS = 10


def _roll_workers_on_new_sets(server, watch) -> None:
    from django.conf import settings
    from django.db import connections

    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + LOAD_NICENESS)
    while True:
        time.sleep(max(settings.MODEL_REGISTRY_CHECK_SECONDS, 1))
        try:
            rolling = watch.new_set_loaded()
        except Exception:  # the database away for a while: the workers serve what they hold meanwhile
            server.log.exception("checking the model registry in the master failed")
            continue
        finally:
            connections.close_all()
        if rolling:
            server.log.info("a new set of models is loaded: rolling the workers")
            _freeze_what_is_loaded()
            os.kill(os.getpid(), signal.SIGHUP)


def _freeze_what_is_loaded() -> None:
    """Move everything loaded so far out of the garbage collector's sight: its full collections would
    otherwise walk the models' millions of objects (id maps, vocabularies) in the middle of requests, and
    touch, so copy, the memory the workers share."""
    import gc

    gc.freeze()
