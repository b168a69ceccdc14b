"""The service as it is deployed: gunicorn (gunicorn.conf.py) with production settings, in its own process, on
its own migrated SQLite database, answering real HTTP.

For what lives in the server rather than in a view: throttles shared between workers, body limits, error pages.
gunicorn starts on a socket this process binds (tests/live/gunicorn.py), so no port can be taken in between.
"""
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.live.gunicorn import REPO, Gunicorn, start_gunicorn


@dataclass
class LiveServer:
    url: str  # http://127.0.0.1:<port>, no trailing slash
    env: dict[str, str]
    log: Path

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        """``requests.request`` against this server; ``path`` starts with a slash."""
        kwargs.setdefault("timeout", 60)
        return requests.request(method, self.url + path, **kwargs)

    def manage(self, *args: str) -> str:
        """Run ``manage.py`` on the server's database; its stdout."""
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=self.env, capture_output=True,
                              text=True, timeout=300)
        if done.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def create_user(self, username: str, password: str, *, role: str | None = "developer", staff: bool = False) -> None:
        """A user (with a profile of ``role``, and staff rights when asked) created straight in the database,
        so that no sign-up counts against the server's throttles."""
        code = ("from django.contrib.auth import get_user_model; from profiles.services import profile_create; "
                f"u = get_user_model().objects.create_user({username!r}, password={password!r}, "
                f"is_staff={staff!r}, is_superuser={staff!r}); "
                f"role = {role!r}; role and profile_create(user=u, role=role)")
        self.manage("shell", "-c", code)

    def token(self, username: str, password: str) -> str:
        answer = self.request("POST", "/api/v1/auth/token", json={"username": username, "password": password})
        answer.raise_for_status()
        return answer.json()["token"]


@pytest.fixture
def live_server_factory(tmp_path) -> Iterator[Callable[..., LiveServer]]:
    """``start(**env)`` starts a server with these environment variables over production defaults
    (DEBUG=0, no broker, a fresh SQLite database); every server started is stopped after the test."""
    with _servers(tmp_path) as start:
        yield start


@contextmanager
def _servers(tmp_path: Path):
    started: list[Gunicorn] = []

    def start(**env: str) -> LiveServer:
        number = len(started)
        base = {key: value for key, value in os.environ.items()
                if key not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CACHE_URL"}}
        full_env = {**base, "DEBUG": "0", "SECRET_KEY": "live-test-secret-key-not-for-production",
                    "SECURE_SSL_REDIRECT": "0", "ALLOWED_HOSTS": "127.0.0.1,localhost",
                    "DATABASE_URL": f"sqlite:///{tmp_path / f'live-{number}.sqlite3'}",
                    "MODEL_DIR": str(tmp_path / f"models-{number}"), "WEB_CONCURRENCY": "2", **env}
        server = LiveServer(url="", env=full_env, log=tmp_path / f"gunicorn-{number}.log")
        server.manage("migrate", "--no-input", "-v", "0")
        started.append(start_gunicorn(full_env, server.log))
        server.url = started[-1].url
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
