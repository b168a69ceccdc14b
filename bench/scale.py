"""The million-item world end to end (issue 14): build it, train, serve, measure; one table at the end.

    .venv/bin/python bench/scale.py                  # 1,000,000 users and catalog items, 10,000,000 events
    .venv/bin/python bench/scale.py --scale 0.05     # 50,000 users, 40,000 positions, 10,000 startups
    .venv/bin/python bench/scale.py --reuse          # serve and measure the world and models already built
                                                     # (the training numbers: the registry's, of its last run)

It DROPS and re-creates the database named in DATABASE_URL (default ``scalebench``). Each step prints as
it goes, with its time:
1. seed: migrate, then ``seed_demo`` at the scaled sizes (800,000 positions, 200,000 startups, 1,000,000
   users, 10,000,000 interactions and the accepts that answer them at scale 1).
2. train: ``train_models --algorithms`` (default content, collaborative and the item-item models; EASE
   leaves itself out above 20,000 items); each algorithm's training time and peak resident memory as the
   registry recorded them (ModelVersion.training_seconds, peak_memory_mb).
3. load: a fresh process loads the active set as a web process does at start (``serving_models()``:
   artifacts read, indexes built), timed, with its resident memory.
4. serve: gunicorn, 2 preloaded workers (gunicorn.conf.py); the first 10 requests' latencies, one at a
   time (each worker's first among them); each worker's memory (resident, unique, and
   what it shares with the others across the fork); then bench/api_latency.py's load at 1, 4 and 8 clients
   on ``POST /api/v1/recommendations`` and on the trivial endpoint (a DRF APIView serialising ten items, no
   database) in the same server, and the ratio of their requests per second (aim: at least 0.25).
5. answers: 4 clients' load for 20 s, then 20 s more while one developer applies to a position or dismisses a
   startup twice a second (each answer changes the market and who may be shown to whom in every web process).
6. swap: under 4 clients' load, a new content version is activated (a copy of the active one's registry
   row, so the artifact is the same and the reload is real): how long until no answer comes from the old
   set (the load goes on until the new set answers), the latency before and during the swap (no request
   should wait for it), and the requests that failed meanwhile.
7. recall: bench/serving_recall.py, the share of the exact top 10 the served ranking keeps.

Writes bench/results/scale.json. Speeds count from this run, with the machine named; the load generator
shares the machine's cores with the server.
"""
import argparse
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from ann_compare import cpu_model
from api_latency import PORT, RECOMMENDATIONS, TEN_ITEMS, developer_ids, server_env, staff_token, start_gunicorn
from api_latency import load as load_at
from api_latency import summary as load_summary
from seed_demo import manage, recreate_database

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/scalebench"
WORLD = {"users": 1_000_000, "positions": 800_000, "startups": 200_000, "interactions": 10_000_000}
ALGORITHMS = "content_based,collaborative,ease,rp3beta"
LEVELS = (1, 4, 8)


def django_json(env: dict, code: str) -> dict:
    """What ``code`` (run in ``manage.py shell``) prints as its last line, as JSON."""
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def seed(env: dict, url: str, scale: float) -> dict:
    recreate_database(url)
    migrate = manage(env, "migrate", "--no-input", "-v0")
    sizes = {name: round(value * scale) for name, value in WORLD.items()}
    seconds = manage(env, "seed_demo", *(f"--{name}={value}" for name, value in sizes.items()), "--seed", "0")
    print(f"seed: {seconds:.1f} s (migrate {migrate:.1f} s)", flush=True)
    return {"sizes": sizes, "seed_seconds": round(seconds, 1), "migrate_seconds": round(migrate, 1)}


TRAINED = """
import json
from ml.models import TrainingRun
run = TrainingRun.objects.order_by("-pk").first()
print(json.dumps({"run": run.pk, "status": run.status, "skipped": run.skipped, "versions": {
    v.algorithm: {"version": v.version, "training_seconds": v.training_seconds, "peak_memory_mb": v.peak_memory_mb,
                  "items": v.n_items, "interactions": v.n_interactions} for v in run.model_versions.all()}}))
"""


def train(env: dict, algorithms: str) -> dict:
    seconds = manage(env, "train_models", "--algorithms", algorithms)
    trained = django_json(env, TRAINED) | {"train_seconds": round(seconds, 1)}
    for algorithm, numbers in trained["versions"].items():
        print(f"  {algorithm:<15} {numbers['training_seconds'] or 0:8.1f} s  "
              f"peak {numbers['peak_memory_mb'] or 0:8.0f} MB", flush=True)
    return trained


LOADED = """
import json, time, psutil
started = time.perf_counter()
from recommendations.model_store import serving_models
serving = serving_models().serving
print(json.dumps({"load_seconds": round(time.perf_counter() - started, 2), "ready": serving.ready,
                  "items": len(serving.item_ids), "rss_mb": round(psutil.Process().memory_info().rss / 2**20)}))
"""


def worker_memory(server: subprocess.Popen) -> list[dict]:
    """Each gunicorn worker's resident memory, the part only it holds (USS) and the rest (shared across the
    fork with the master and the other worker), in MB."""
    out = []
    for worker in psutil.Process(server.pid).children():
        info = worker.memory_full_info()
        out.append({"pid": worker.pid, "rss_mb": round(info.rss / 2**20), "uss_mb": round(info.uss / 2**20),
                    "pss_mb": round(info.pss / 2**20), "shared_mb": round((info.rss - info.uss) / 2**20)})
    return out


CLONE_AND_ACTIVATE = """
import json, time
from django.db import transaction
from django.db.models import Max
from ml.models import ModelVersion
from ml.services import model_version_activate
active = ModelVersion.objects.get(algorithm="content_based", status=ModelVersion.Status.ACTIVE)
copy = ModelVersion.objects.get(pk=active.pk)
newest = ModelVersion.objects.filter(algorithm="content_based").aggregate(Max("version"))["version__max"]
copy.pk, copy.version, copy.status = None, newest + 1, ModelVersion.Status.READY
copy.save()
with transaction.atomic():
    model_version_activate(algorithm="content_based", version=copy.version)
print(json.dumps({"old": active.version, "new": copy.version, "activated_at": time.time()}))
"""


def swap(env: dict, token: str, users: list[int], clients: int = 4, before: float = 10, within: float = 1200) -> dict:
    """Latency before and during a content version's swap under load, and how long the swap took: the load
    goes on until the last 100 answers all come from the new version (gunicorn's master loads it in the
    background and then rolls the workers: minutes at a million items), or ``within`` seconds after the
    activation."""
    answers: list[tuple[float, float, int]] = []  # (sent at, seconds, content version served)
    developers = np.asarray(users)
    failures: list[str] = []  # what went wrong with a request that got no answer, or not a 200
    stopped = threading.Event()

    def client(seed: int) -> None:
        rng = np.random.default_rng(seed)
        connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        while not stopped.is_set():
            user = _any_of(rng, developers)
            sent = time.time()
            try:
                response, payload = _recommendations(connection, token, user)
            except (OSError, http.client.HTTPException) as exc:  # a timeout: a request that waited 30 s
                failures.append(type(exc).__name__)
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
                continue
            if response.status == 200:
                answers.append((sent, time.time() - sent, payload["model_versions"]["content_based"]))
            else:
                failures.append(str(response.status))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(before)
    # The steady latencies end here: the process that activates the version (Django's start, seconds of
    # a core) competes with the load until the activation, and its cost is neither steady state nor the swap's.
    steady_until = time.time()
    swapped = django_json(env, CLONE_AND_ACTIVATE)
    activated = swapped["activated_at"]
    while time.time() < activated + within:
        time.sleep(1)
        recent = answers[-100:]
        if len(recent) == 100 and all(version == swapped["new"] for _, _, version in recent):
            break
    stopped.set()
    for thread in threads:
        thread.join()
    old_after = [sent for sent, _, version in answers if version == swapped["old"] and sent >= activated]
    done = max(old_after, default=activated)
    steady = [seconds * 1000 for sent, seconds, _ in answers if sent < steady_until]
    during = [seconds * 1000 for sent, seconds, _ in answers if activated <= sent <= done]
    served_new = any(version == swapped["new"] for _, _, version in answers)
    numbers = {"swap_seconds": round(done - activated, 1), "new_version_served": served_new,
               "before": _latencies(steady), "during": _latencies(during), "failed_requests": len(failures),
               "failures": sorted(set(failures))}
    print(f"swap: the old set answered for {numbers['swap_seconds']} s after the activation; "
          f"p99 before {numbers['before']['p99_ms']} ms, during {numbers['during']['p99_ms']} ms; "
          f"{len(failures)} requests failed", flush=True)
    return numbers


ANSWERER = """
import json
from profiles.models import Developer, Position, Startup
from profiles.services import auth_token_issue
developer = Developer.objects.order_by("pk").first()
positions = Position.objects.filter(status="open").order_by("?").values_list("pk", flat=True)[:1000]
print(json.dumps({"token": auth_token_issue(user=developer.user).key, "positions": list(positions),
                  "startups": list(Startup.objects.order_by("?").values_list("pk", flat=True)[:1000])}))
"""


def answers_under_load(env: dict, token: str, users: list[int], clients: int = 4, seconds: float = 20,
                       every: float = 0.5) -> dict:
    """``clients``' load for ``seconds`` as it is, then as long again while one developer applies to a
    position or dismisses a startup every ``every`` seconds through the API: each answer changes who may be
    shown to whom and the market, and every web process takes it in at its next registry check."""
    answerer = django_json(env, ANSWERER)
    quiet = load_summary(*load_at(token, users, clients, seconds), clients)
    sent: list[int] = []  # the answers' statuses
    stop = threading.Event()

    def answer() -> None:
        rng = np.random.default_rng(2)
        connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        headers = {"Authorization": f"Token {answerer['token']}", "Content-Type": "application/json"}
        while not stop.wait(every):
            if rng.random() < 0.5:
                event = {"item_type": "position", "item_id": int(rng.choice(answerer["positions"])), "kind": "apply"}
            else:
                event = {"item_type": "startup", "item_id": int(rng.choice(answerer["startups"])), "kind": "dismiss"}
            connection.request("POST", "/api/v1/interactions", json.dumps(event), headers)
            response = connection.getresponse()
            response.read()
            sent.append(response.status)

    answering = threading.Thread(target=answer)
    answering.start()
    try:
        busy = load_summary(*load_at(token, users, clients, seconds), clients)
    finally:
        stop.set()
        answering.join()
    numbers = {"quiet": quiet, "answering": busy, "answers": len(sent),
               "answers_refused": sum(status != 201 for status in sent)}
    print(f"answers under load: {numbers}", flush=True)
    return numbers


def _recommendations(connection: http.client.HTTPConnection, token: str, user_id: int):
    """(response, its JSON) of one developer's recommendations."""
    body = json.dumps({"user_id": user_id, "user_type": "developer", "limit": 10})
    connection.request("POST", RECOMMENDATIONS, body, {"Authorization": f"Token {token}",
                                                       "Content-Type": "application/json"})
    response = connection.getresponse()
    return response, json.loads(response.read())


def _any_of(rng: np.random.Generator, developers: np.ndarray) -> int:
    """A random one of ``developers``, an array: numpy turns a list into one on every choice (21 ms for a
    million-user world's 780,000 developers), which counted in the latencies and took the server's cores."""
    return int(rng.choice(developers))


def first_requests(token: str, users: list[int], n: int = 10) -> list[float]:
    """The first ``n`` requests' latencies (ms) after the server starts, one at a time: each worker's first
    request is among them, with whatever a freshly forked worker makes on first use."""
    rng, developers = np.random.default_rng(1), np.asarray(users)
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    latencies = []
    for _ in range(n):
        user = _any_of(rng, developers)
        sent = time.perf_counter()
        _recommendations(connection, token, user)
        latencies.append(round((time.perf_counter() - sent) * 1000, 1))
    print(f"first requests (ms): {latencies}", flush=True)
    return latencies


def _latencies(ms: list[float]) -> dict:
    if not ms:
        return {"requests": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    return {"requests": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1), "max_ms": round(max(ms), 1)}


def serve(env: dict, url: str, seconds: float, warmup: float) -> dict:
    token, users = staff_token(url), developer_ids(url)
    started = time.perf_counter()
    server = start_gunicorn({**env, "DJANGO_SETTINGS_MODULE": "bench.trivial_settings"}, within=900)
    out: dict = {"server_start_seconds": round(time.perf_counter() - started, 1)}
    try:
        out["first_requests_ms"] = first_requests(token, users)
        load_at(token, users, 4, warmup)
        out["workers"] = worker_memory(server)
        print(f"workers: {out['workers']}", flush=True)
        for endpoint in (RECOMMENDATIONS, TEN_ITEMS):
            load_at(token, users, max(LEVELS), warmup, endpoint)
            out[endpoint] = [load_summary(*load_at(token, users, clients, seconds, endpoint), clients)
                             for clients in LEVELS]
        for mine, trivial in zip(out[RECOMMENDATIONS], out[TEN_ITEMS], strict=True):
            mine["ratio_to_trivial"] = round(mine["requests_per_second"] / trivial["requests_per_second"], 3)
        out["answers"] = answers_under_load(env, token, users)
        out["swap"] = swap(env, token, users)
    finally:
        server.terminate()
        server.wait(timeout=60)
    return out


def recall(env: dict) -> dict:
    subprocess.run([sys.executable, "bench/serving_recall.py", "--users", "200"], cwd=ROOT, env=env, check=True)
    return json.loads((RESULTS / "serving_recall.json").read_text())


def machine() -> str:
    return f"{cpu_model()}, {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GB"


def report(result: dict) -> None:
    print(f"\nMachine: {result['machine']}")
    if "seed" in result:
        sizes = result["seed"]["sizes"]
        print(f"seed: {result['seed']['seed_seconds']} s for {sizes['users']:,} users, "
              f"{sizes['positions'] + sizes['startups']:,} catalog items, {sizes['interactions']:,} interactions")
    if "train" in result:
        total = result["train"].get("train_seconds", "(not timed here)")
        print(f"train: run {result['train']['run']}, {total} s in all")
        for algorithm, numbers in result["train"]["versions"].items():
            print(f"  {algorithm:<15} {numbers['training_seconds']} s, peak {numbers['peak_memory_mb']} MB")
    print(f"load: {result['load']['load_seconds']} s in a fresh process, {result['load']['rss_mb']} MB resident")
    serving = result["serve"]
    print(f"first requests after the start (ms): {serving['first_requests_ms']}")
    print("workers (MB): " + "; ".join(f"rss {w['rss_mb']} uss {w['uss_mb']} shared {w['shared_mb']}"
                                        for w in serving["workers"]))
    print(f"\n{'clients':>8} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'trivial req/s':>14} "
          f"{'trivial p99':>12} {'ratio':>6}")
    for mine, trivial in zip(serving[RECOMMENDATIONS], serving[TEN_ITEMS], strict=True):
        print(f"{mine['clients']:>8} {mine['requests_per_second']:>8} {mine['p50_ms']:>8} {mine['p95_ms']:>8} "
              f"{mine['p99_ms']:>8} {trivial['requests_per_second']:>14} {trivial['p99_ms']:>12} "
              f"{mine['ratio_to_trivial']:>6}")
    print("aim: p99 < 50 ms and >= 150 requests/s at 4 clients; ratio >= 0.25")
    answers = serving["answers"]
    print(f"with {answers['answers']} answers recorded meanwhile ({answers['answers_refused']} refused), 4 clients: "
          f"{answers['answering']['requests_per_second']} req/s, p99 {answers['answering']['p99_ms']} ms; "
          f"without: {answers['quiet']['requests_per_second']} req/s, p99 {answers['quiet']['p99_ms']} ms")
    print(f"swap: {serving['swap']}")
    if "recall" in result:
        print(f"recall@10 of the served top 10 against exact: {result['recall'].get('recall_at_10')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="the world's sizes times this")
    parser.add_argument("--reuse", action="store_true", help="skip seeding and training")
    parser.add_argument("--model-dir", type=Path, default=ROOT / "var" / "scale-models",
                        help="MODEL_DIR: where the models are written and read")
    parser.add_argument("--algorithms", default=ALGORITHMS)
    parser.add_argument("--seconds", type=float, default=20, help="per concurrency level")
    parser.add_argument("--warmup", type=float, default=5)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("bench/scale.py measures on PostgreSQL: set DATABASE_URL=postgres://...")
    # PYTHONUNBUFFERED: the commands' progress shows as it comes, also when this output goes to a file
    env = server_env(url, args.model_dir, epochs=3) | {"PYTHONUNBUFFERED": "1"}
    result: dict = {"machine": machine()}
    if args.reuse:
        result["train"] = django_json(env, TRAINED)
    else:
        result["seed"] = seed(env, url, args.scale)
        result["train"] = train(env, args.algorithms)
    result["load"] = django_json(env, LOADED)
    print(f"load: {result['load']}", flush=True)
    result["serve"] = serve(env, url, args.seconds, args.warmup)
    result["recall"] = recall(env)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scale.json").write_text(json.dumps(result, indent=1))
    report(result)


if __name__ == "__main__":
    main()
