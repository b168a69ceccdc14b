"""Latency and throughput of POST /api/v1/recommendations, served by gunicorn (2 workers) on PostgreSQL.

    .venv/bin/python bench/api_latency.py                 # seed, train, serve, measure
    .venv/bin/python bench/api_latency.py --reuse         # measure again on the world already built
    .venv/bin/python bench/api_latency.py --reuse --impressions --rounds 4   # recording on against off

It DROPS and re-creates the database named in DATABASE_URL (default ``latencybench``), seeds a world
of 100,000 items (80,000 positions and 20,000 startups) and 50,000 users, trains the three algorithms,
starts gunicorn and sends requests for random developers from ``--clients`` concurrent clients for
``--seconds``, at each concurrency level (a new connection per request: gunicorn's sync workers close
each one after its response). Prints p50 / p95 / p99 latency and requests per second per level, and
writes the numbers (JSON) and a plot of both (PNG) to bench/results/. Aim: p99 < 50 ms, >= 150 requests/s
on a 2-core machine; the load generator shares those cores, so the figures are conservative. The
recommendations throttle is raised out of the load's reach (server_env): the bench measures serving.
The same server then serves ``POST /bench/ten-items`` the same load (bench/trivial_urls.py: a DRF APIView
serialising ten items, no database, no authentication; mounted only through bench/trivial_settings.py), and
the report gives the recommendations' requests per second as a ratio of it (the aim: at least 0.25).

``--impressions`` measures what recording the answers costs: the server runs ``--rounds`` times (default
2) with RECORD_IMPRESSIONS off, then on (alternating, so that a drift of the machine falls on both), and the
report gives each mode's median over its runs and the ratio on/off (the aim: within 10%).
"""
import argparse
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psycopg
from seed_demo import manage, recreate_database

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/latencybench"
WORLD = {"users": 50_000, "positions": 80_000, "startups": 20_000, "interactions": 500_000}


def _free_port() -> int:
    """A port nothing listens on now: a fixed one may be another server's, whose health check would pass."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


PORT = _free_port()


def server_env(url: str, model_dir: Path, epochs: int) -> dict:
    # One staff token sends every request: its recommendations rate (300/minute by default) is raised far above
    # what the load reaches, so the bench measures serving, not throttling. The throttle itself still runs (a
    # cache read and write per request, in Redis when REDIS_URL or CACHE_URL is set), as in production; a
    # one-second window keeps the list of request times it stores as short as production's.
    return {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "bench-only-secret-key", "DEBUG": "0",
            "SECURE_SSL_REDIRECT": "0", "ALLOWED_HOSTS": "127.0.0.1", "MODEL_DIR": str(model_dir),
            "TWO_TOWER_MAX_EPOCHS": str(epochs), "LOG_LEVEL": "WARNING",
            "THROTTLE_RECOMMENDATIONS": "1000000/second"}


def build_world(env: dict, url: str, scale: float) -> None:
    recreate_database(url)
    print(f"migrate: {manage(env, 'migrate', '--no-input', '-v0'):.1f} s", flush=True)
    sizes = [f"--{name}={round(value * scale)}" for name, value in WORLD.items()]
    print(f"seed_demo: {manage(env, 'seed_demo', *sizes, '--seed', '0'):.1f} s", flush=True)
    print(f"train_models: {manage(env, 'train_models'):.1f} s", flush=True)


def staff_token(url: str) -> str:
    """A new (knox) token for a staff user made for the benchmark."""
    code = ("from django.contrib.auth import get_user_model; from profiles.services import auth_token_issue; "
            "u, _ = get_user_model().objects.get_or_create(username='bench-staff', defaults={'is_staff': True}); "
            "print(auth_token_issue(user=u).key)")
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, check=True,
                         env=server_env(url, Path("."), 0), capture_output=True, text=True).stdout
    return out.strip().splitlines()[-1]


def developer_ids(url: str) -> list[int]:
    with psycopg.connect(url) as connection:
        return [row[0] for row in connection.execute("SELECT user_id FROM profiles_developer")]


def start_gunicorn(env: dict, within: float = 180) -> subprocess.Popen:
    """gunicorn on PORT, once it answers; exits if it has not within ``within`` seconds (its master loads the
    models first: minutes at a million items)."""
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "--bind", f"127.0.0.1:{PORT}", "--workers", "2"],
        cwd=ROOT, env=env)  # the rest from gunicorn.conf.py, as in production
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"gunicorn exited with status {server.returncode} before it served")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=2)
            connection.request("GET", "/api/v1/health")
            if connection.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    sys.exit(f"gunicorn did not come up within {within:.0f} s")


RECOMMENDATIONS, TEN_ITEMS = "/api/v1/recommendations", "/bench/ten-items"  # what is measured; the baseline


def client_loop(token: str, users: list[int], stop_at: float, latencies: list[float], errors: list[int],
                seed: int, endpoint: str = RECOMMENDATIONS) -> None:
    rng = random.Random(seed)
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    while time.monotonic() < stop_at:
        body = json.dumps({"user_id": rng.choice(users), "user_type": "developer", "limit": 10})
        started = time.perf_counter()
        connection.request("POST", endpoint, body, headers)
        response = connection.getresponse()
        response.read()
        elapsed = time.perf_counter() - started
        if response.status == 200:
            latencies.append(elapsed)
        else:
            errors.append(response.status)


def load(token: str, users: list[int], clients: int, seconds: float,
         endpoint: str = RECOMMENDATIONS) -> tuple[list[float], list[int], float]:
    latencies: list[float] = []
    errors: list[int] = []
    stop_at = time.monotonic() + seconds
    threads = [threading.Thread(target=client_loop, args=(token, users, stop_at, latencies, errors, n, endpoint))
               for n in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors, time.monotonic() - started


def summary(latencies: list[float], errors: list[int], elapsed: float, clients: int) -> dict:
    ms = [v * 1000 for v in latencies]
    numbers = {"clients": clients, "requests": len(ms), "errors": len(errors), "seconds": round(elapsed, 1),
               "requests_per_second": round(len(ms) / elapsed, 1), "mean_ms": round(statistics.fmean(ms), 1),
               **{f"p{q}_ms": round(float(np.percentile(ms, q)), 1) for q in (50, 95, 99)}}
    print(json.dumps(numbers), flush=True)
    return numbers


def report(runs: list[dict], baseline: list[dict]) -> None:
    print(f"\n{'clients':>8} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7} "
          f"{'trivial req/s':>14} {'ratio':>6}")
    for run, trivial in zip(runs, baseline, strict=True):
        run["trivial_requests_per_second"] = trivial["requests_per_second"]
        run["ratio_to_trivial"] = round(run["requests_per_second"] / trivial["requests_per_second"], 3)
        print(f"{run['clients']:>8} {run['requests_per_second']:>8} {run['p50_ms']:>8} {run['p95_ms']:>8} "
              f"{run['p99_ms']:>8} {run['errors']:>7} {trivial['requests_per_second']:>14} "
              f"{run['ratio_to_trivial']:>6}")
    print("aim: p99 < 50 ms and >= 150 requests/s; ratio to the trivial endpoint (same server, same load) >= 0.25")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "api_latency.json").write_text(json.dumps({"runs": runs, "trivial": baseline}, indent=1))
    plot(runs)


def plot(runs: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clients = [run["clients"] for run in runs]
    figure, (latency, throughput) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, colour in (("p50_ms", "green"), ("p95_ms", "orange"), ("p99_ms", "red")):
        latency.plot(clients, [run[name] for run in runs], marker="o", color=colour, label=name[:-3])
    latency.axhline(50, color="red", linestyle=":", label="aim p99 50 ms")
    latency.set_xticks(clients)
    latency.set_xlabel("concurrent clients")
    latency.set_ylabel("latency (ms)")
    latency.legend()
    throughput.bar([str(c) for c in clients], [run["requests_per_second"] for run in runs], color="#4472c4")
    throughput.axhline(150, color="red", linestyle=":", label="aim 150 req/s")
    throughput.set_xlabel("concurrent clients")
    throughput.set_ylabel("requests per second")
    throughput.legend()
    figure.suptitle("POST /api/v1/recommendations, gunicorn 2 workers, 142,500 items")
    figure.tight_layout()
    figure.savefig(RESULTS / "api_latency.png", dpi=110)


def measure(env: dict, token: str, users: list[int], levels: list[int], seconds: float, warmup: float,
            endpoints: tuple[str, ...] = (RECOMMENDATIONS,)) -> list[list[dict]]:
    """One server, warmed up, then each concurrency level in turn, for each of ``endpoints``: [runs per
    endpoint]."""
    server = start_gunicorn(env)
    try:
        measured = []
        for endpoint in endpoints:
            print(f"{endpoint}: warm-up {warmup:.0f} s ...", flush=True)
            load(token, users, max(levels), warmup, endpoint)
            runs = []
            for clients in levels:
                print(f"{endpoint}: measuring {seconds:.0f} s with {clients} clients ...", flush=True)
                runs.append(summary(*load(token, users, clients, seconds, endpoint), clients))
            measured.append(runs)
        return measured
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def compare_impressions(env: dict, token: str, users: list[int], levels: list[int], seconds: float,
                        warmup: float, rounds: int) -> None:
    by_mode: dict[str, list[list[dict]]] = {"off": [], "on": []}
    for mode in ("off", "on") * rounds:
        print(f"\nimpressions {mode}", flush=True)
        by_mode[mode].append(measure({**env, "RECORD_IMPRESSIONS": "1" if mode == "on" else "0"}, token, users,
                                     levels, seconds, warmup)[0])
    print(f"\n{'clients':>8} {'mode':>5} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    rows = []
    for n, clients in enumerate(levels):
        median = {mode: {name: statistics.median(runs[n][name] for runs in by_mode[mode])
                         for name in ("requests_per_second", "p50_ms", "p99_ms")} for mode in by_mode}
        for mode, numbers in median.items():
            print(f"{clients:>8} {mode:>5} {numbers['requests_per_second']:>8.1f} {numbers['p50_ms']:>8.2f} "
                  f"{numbers['p99_ms']:>8.2f}")
        ratios = {name: round(median["on"][name] / median["off"][name], 3) for name in median["on"]}
        print(f"{clients:>8} {'on/off':>5} {ratios['requests_per_second']:>8.3f} {ratios['p50_ms']:>8.3f} "
              f"{ratios['p99_ms']:>8.3f}")
        rows.append({"clients": clients, **median, "on_over_off": ratios})
    print("aim: p50 and p99 with impressions on within 10% of off")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "api_latency_impressions.json").write_text(json.dumps({"runs": by_mode, "medians": rows}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reuse", action="store_true", help="skip seeding and training")
    parser.add_argument("--clients", default="2,4,8", help="concurrency levels, comma-separated")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--two-tower-epochs", type=int, default=5)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="the world's sizes times this (0.2: 10,000 users, 20,000 catalog items)")
    parser.add_argument("--impressions", action="store_true",
                        help="compare recording impressions on and off (servers alternating, --rounds of each)")
    parser.add_argument("--rounds", type=int, default=2, help="with --impressions: servers per mode")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("bench/api_latency.py measures on PostgreSQL: set DATABASE_URL=postgres://...")
    env = server_env(url, ROOT / "var" / "latency-models", args.two_tower_epochs)
    if not args.reuse:
        build_world(env, url, args.scale)
    token, users = staff_token(url), developer_ids(url)
    levels = [int(n) for n in args.clients.split(",")]
    if args.impressions:
        compare_impressions(env, token, users, levels, args.seconds, args.warmup, args.rounds)
    else:  # the same server then serves the trivial endpoint the same load: the stack's own ceiling
        report(*measure({**env, "DJANGO_SETTINGS_MODULE": "bench.trivial_settings"}, token, users, levels,
                        args.seconds, args.warmup, (RECOMMENDATIONS, TEN_ITEMS)))


if __name__ == "__main__":
    main()
