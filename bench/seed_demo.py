"""Time seed_demo at the scale issue #2 asks for, on PostgreSQL, and print seconds per phase and rows/s.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/seedbench .venv/bin/python bench/seed_demo.py
    ... bench/seed_demo.py --users 10000 --positions 5000 --startups 2000 --interactions 100000   # smaller
    ... bench/seed_demo.py --reseed     # then time a second run with --flush over the first world

It DROPS and re-creates the database named in DATABASE_URL (default ``seedbench``), migrates it, and
runs ``manage.py seed_demo`` in a subprocess, whose own output lists every phase with its rows, seconds
and rows/s. The target is under 180 s for the default (big) world on a 2-core machine.
"""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import psycopg

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/seedbench"
BIG = {"users": 100_000, "positions": 50_000, "startups": 20_000, "interactions": 1_000_000}
TARGET_SECONDS = 180
COUNTED_TABLES = ("auth_user", "profiles_developer", "profiles_founder", "profiles_investor", "profiles_startup",
                  "profiles_position", "profiles_developer_skills", "profiles_developer_preferred_industries",
                  "profiles_founder_skills", "profiles_investor_preferred_industries", "profiles_startup_founders",
                  "profiles_startup_required_skills", "profiles_position_required_skills", "profiles_interaction")


def recreate_database(url: str) -> None:
    name = urlparse(url).path.lstrip("/")
    if not name.replace("_", "").isalnum():
        sys.exit(f"refusing to drop a database with an unusual name: {name!r}")
    maintenance = urlparse(url)._replace(path="/postgres").geturl()
    with psycopg.connect(maintenance, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def manage(env: dict, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)
    return time.perf_counter() - started


def count_rows(url: str) -> int:
    with psycopg.connect(url) as connection:
        return sum(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in COUNTED_TABLES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in BIG.items():
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reseed", action="store_true", help="also time a second run with --flush")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("bench/seed_demo.py measures PostgreSQL; set DATABASE_URL=postgres://...")
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only"),
           "SECURE_SSL_REDIRECT": "0"}
    sizes = [f"--{name}={getattr(args, name)}" for name in BIG] + [f"--seed={args.seed}"]

    recreate_database(url)
    manage(env, "migrate", "--no-input", "-v0")
    print(f"seed_demo {' '.join(sizes)} on {urlparse(url).hostname}/{urlparse(url).path.lstrip('/')}", flush=True)
    seconds = manage(env, "seed_demo", *sizes)
    rows = count_rows(url)
    verdict = "within" if seconds < TARGET_SECONDS else "OVER"
    print(f"first seed: {seconds:.1f} s wall (incl. Django start-up), {rows:,} rows, {rows / seconds:,.0f} rows/s "
          f"-- {verdict} the {TARGET_SECONDS} s target")
    if args.reseed:
        seconds = manage(env, "seed_demo", "--flush", *sizes)
        print(f"re-seed with --flush: {seconds:.1f} s wall")


if __name__ == "__main__":
    main()
