"""Tries, from outside, each way the service was once knocked over (issue 11), and prints what it answers now.

    .venv/bin/python bench/hardening.py

Runs the deployed processes as production runs them: gunicorn (gunicorn.conf.py, 2 workers) with DEBUG off on
PostgreSQL (DATABASE_URL, default ``hardeningbench``, DROPPED and re-created) and Redis (broker and throttle
cache, REDIS_URL, default db 12). It seeds a small world and trains twice (so each algorithm has an earlier
version), then sends the requests that used to fail and prints status, content type and time for each:
oversized name lists, password guessing, sign-up floods, token revocation, deep and non-finite JSON, check
constraints, oversized bodies, unknown paths and methods, a forged X-Forwarded-Proto, a damaged artifact, an
unreadable active model at start, a broker that is down and a database that is.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import requests
from seed_demo import manage, recreate_database

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/hardeningbench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/12"
PORT = 8766
BASE = f"http://127.0.0.1:{PORT}"
API = BASE + "/api/v1"
PASSWORD = "a-long-bench-pass-phrase-7"
WORLD = ["--users", "300", "--startups", "120", "--positions", "400", "--interactions", "8000", "--seed", "0"]


def server_env(url: str, redis: str, model_dir: Path, **extra: str) -> dict:
    return {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis, "SECRET_KEY": "bench-only-secret-key",
            "DEBUG": "0", "SECURE_SSL_REDIRECT": "0", "ALLOWED_HOSTS": "127.0.0.1", "MODEL_DIR": str(model_dir),
            "TWO_TOWER_MAX_EPOCHS": "5", "LOG_LEVEL": "WARNING", **extra}


class Server:
    def __init__(self, env: dict):
        self.process = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "--no-control-socket", "--bind",
                                         f"127.0.0.1:{PORT}"], cwd=ROOT, env=env)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                requests.get(API + "/health", timeout=5, allow_redirects=False)
                return
            except requests.ConnectionError:
                time.sleep(0.3)
        self.stop()
        sys.exit("gunicorn did not come up within 180 s")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def shell(env: dict, code: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True)
    return done.stdout.strip()


def timed(method: str, url: str, **kwargs) -> tuple[requests.Response, float]:
    started = time.perf_counter()
    answer = requests.request(method, url, timeout=120, **kwargs)
    return answer, time.perf_counter() - started


def show(what: str, answer: requests.Response, seconds: float, note: str = "") -> None:
    kind = answer.headers.get("Content-Type", "").split(";")[0]
    body = answer.text[:110].replace("\n", " ")
    print(f"{what:<52} {answer.status_code:>4} {kind:<18} {seconds * 1000:>8.0f} ms  {note or body}", flush=True)


def auth(token: str) -> dict:
    return {"Authorization": f"Token {token}"}


def make_users(env: dict) -> None:
    shell(env, "from django.contrib.auth import get_user_model; from profiles.services import profile_create; "
               "U = get_user_model(); "
               f"U.objects.create_superuser('bench-admin', password={PASSWORD!r}); "
               f"u = U.objects.create_user('bench-dev', password={PASSWORD!r}); "
               "profile_create(user=u, role='developer'); "
               f"f = U.objects.create_user('bench-founder', password={PASSWORD!r}); "
               "profile_create(user=f, role='founder')")


def token_for(username: str) -> str:
    return requests.post(API + "/auth/token", json={"username": username, "password": PASSWORD}, timeout=30).json()[
        "token"]


def request_checks(dev: str, founder: str, dev_id: int) -> None:
    for names in (10_000, 50_000):
        body = {"skills": [f"skill-{n}" for n in range(names)]}
        answer, seconds = timed("PATCH", f"{API}/developers/{dev_id}/", json=body, headers=auth(dev))
        show(f"PATCH own profile, {names:,} skill names ({len(json.dumps(body)) // 1000} KB)", answer, seconds)
    deep = '{"username": ' + "[" * 1000 + "]" * 1000 + ', "password": "x"}'
    answer, seconds = timed("POST", API + "/auth/token", data=deep, headers={"Content-Type": "application/json"})
    show("JSON nested 1,000 deep, anonymous /auth/token", answer, seconds)
    statuses = []
    for _ in range(30):
        answer, seconds = timed("POST", API + "/auth/token", json={"username": "bench-admin", "password": "wrong"})
        statuses.append(answer.status_code)
    show("30 wrong passwords for bench-admin (the last)", answer, seconds,
         f"first 429 at #{statuses.index(429) + 1 if 429 in statuses else None}, "
         f"Retry-After {answer.headers.get('Retry-After')}")
    statuses = []
    for n in range(20):
        answer, seconds = timed("POST", API + "/auth/register", json={
            "username": f"flood{n}", "password": PASSWORD, "email": f"f{n}@example.com", "role": "developer"})
        statuses.append(answer.status_code)
    show("20 sign-ups in a row (last)", answer, seconds,
         f"{statuses.count(201)} x 201, {statuses.count(429)} x 429")
    answer, seconds = timed("DELETE", API + "/auth/token", headers=auth(founder))
    show("DELETE /auth/token", answer, seconds)
    answer, seconds = timed("GET", API + "/me", headers=auth(founder))
    show("the revoked token again", answer, seconds)
    answer, seconds = timed("POST", API + "/positions", data='{"startup": 1e309, "title": "x"}',
                            headers={**auth(dev), "Content-Type": "application/json"})
    show('POST /positions {"startup": 1e309}', answer, seconds)
    answer, seconds = timed("POST", API + "/startups", json={"name": "Zero", "team_size": 0}, headers=auth(dev))
    show("POST /startups team_size 0 (as a developer)", answer, seconds)
    answer, seconds = timed("POST", API + "/interactions", data=b"{" + b" " * 3_000_000 + b"}",
                            headers={**auth(dev), "Content-Type": "application/json"})
    show("3 MB body", answer, seconds)
    answer, seconds = timed("GET", API + "/no-such-endpoint", headers=auth(dev))
    show("GET an unknown /api/ path", answer, seconds)
    answer, seconds = timed("DELETE", API + "/health")
    show("DELETE /health", answer, seconds)


def founder_startup_check(founder: str) -> None:
    answer, seconds = timed("POST", API + "/startups", json={"name": "Zero", "team_size": 0}, headers=auth(founder))
    show("POST /startups team_size 0 (as a founder)", answer, seconds)


def forged_proto_check(env: dict) -> None:
    server = Server({**env, "SECURE_SSL_REDIRECT": "1"})
    try:
        answer, seconds = timed("GET", API + "/health", headers={"X-Forwarded-Proto": "https"},
                                allow_redirects=False)
        show("plain HTTP claiming X-Forwarded-Proto: https", answer, seconds,
             f"Location {answer.headers.get('Location')}")
    finally:
        server.stop()


def artifact_dir(url: str, algorithm: str, status: str) -> tuple[int, Path]:
    with psycopg.connect(url) as connection:
        version, path = connection.execute(
            "SELECT version, artifact_path FROM ml_modelversion WHERE algorithm = %s AND status = %s "
            "ORDER BY version DESC LIMIT 1", [algorithm, status]).fetchone()
    return version, Path(path)


def damaged_artifact_check(url: str, admin: str) -> None:
    version, path = artifact_dir(url, "two_tower", "ready")
    weights = next(p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix in {".pt", ".npy", ".npz"})
    data = bytearray(weights.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4096] = os.urandom(min(4096, len(data) - middle))
    weights.write_bytes(bytes(data))
    answer, seconds = timed("POST", API + "/models/load", json={"algorithm": "two_tower", "version": version},
                            headers=auth(admin))
    show(f"activate two_tower v{version} with 4 KB of noise in {weights.name}", answer, seconds)


def unreadable_active_check(url: str, env: dict, admin: str) -> None:
    with psycopg.connect(url) as connection:  # a seeded developer with a history, so every component has a say
        seeded_dev_id = connection.execute(
            "SELECT d.user_id FROM profiles_developer d JOIN profiles_interaction i ON i.user_id = d.user_id "
            "GROUP BY d.user_id ORDER BY COUNT(*) DESC LIMIT 1").fetchone()[0]
    version, path = artifact_dir(url, "content_based", "active")
    path.rename(path.with_name(path.name + ".gone"))  # (chmod would not stop a process running as root)
    server = Server(env)
    try:
        answer, seconds = timed("GET", API + "/health")
        show(f"/health, active content_based v{version} unreadable", answer, seconds, answer.text[:300])
        answer, seconds = timed("POST", API + "/recommendations", headers=auth(admin),
                                json={"user_id": seeded_dev_id, "user_type": "developer", "limit": 5})
        results = answer.json().get("results", []) if answer.ok else []
        show("  recommendations meanwhile", answer, seconds,
             f"{len(results)} results, fallback {answer.json().get('fallback') if answer.ok else None}")
    finally:
        server.stop()


def broker_down_check(env: dict, admin: str) -> None:
    server = Server({**env, "CELERY_BROKER_URL": "redis://127.0.0.1:1/0"})
    try:
        answer, seconds = timed("POST", API + "/models/train", json={"force_retrain": True}, headers=auth(admin))
        show("POST /models/train, broker down", answer, seconds)
        answer, seconds = timed("GET", API + "/health")
        show("/health, broker down", answer, seconds, answer.text[:300])
    finally:
        server.stop()


def database_down_check(env: dict, dev: str) -> None:
    server = Server({**env, "DATABASE_URL": "postgres://postgres@127.0.0.1:1/nowhere"})
    try:
        answer, seconds = timed("GET", API + "/health")
        show("/health, database unreachable", answer, seconds, answer.text[:200])
        answer, seconds = timed("GET", API + "/me", headers=auth(dev))
        show("  GET /me meanwhile", answer, seconds)
    finally:
        server.stop()


def main() -> None:
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    redis = os.environ.get("REDIS_URL", DEFAULT_REDIS)
    model_dir = ROOT / "var" / "hardening-models"
    subprocess.run(["rm", "-rf", str(model_dir)], check=True)
    env = server_env(url, redis, model_dir)
    offline = {**env, "REDIS_URL": "", "CELERY_BROKER_URL": ""}  # trains in-process
    recreate_database(url)
    print(f"migrate: {manage(offline, 'migrate', '--no-input', '-v0'):.1f} s", flush=True)
    print(f"seed_demo: {manage(offline, 'seed_demo', *WORLD):.1f} s", flush=True)
    for n in (1, 2):
        print(f"train_models #{n}: {manage(offline, 'train_models', '--force'):.1f} s", flush=True)
    make_users(offline)
    subprocess.run(["redis-cli", "-u", redis, "flushdb"], check=True, capture_output=True)
    with psycopg.connect(url) as connection:
        dev_id = connection.execute("SELECT id FROM auth_user WHERE username = 'bench-dev'").fetchone()[0]
    print(f"\n{'what':<52} {'code':>4} {'content type':<18} {'time':>11}  answer", flush=True)
    server = Server(env)
    try:
        admin, dev, founder = token_for("bench-admin"), token_for("bench-dev"), token_for("bench-founder")
        founder_startup_check(founder)
        request_checks(dev, founder, dev_id)
        damaged_artifact_check(url, admin)
    finally:
        server.stop()
    forged_proto_check(env)
    broker_down_check(env, admin)
    unreadable_active_check(url, env, admin)
    database_down_check(env, dev)


if __name__ == "__main__":
    main()
