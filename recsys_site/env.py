"""Typed readers of environment variables that fail loudly on bad values.

A typo in production configuration should stop the process at start-up, not
silently fall back to a default.
"""
import math
import os
from typing import overload
from urllib.parse import unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@overload
def env_str(name: str, default: str) -> str: ...
@overload
def env_str(name: str, default: None = None) -> str | None: ...
def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None else value


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be one of {sorted(_TRUE | _FALSE - {''})}, got {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not math.isfinite(number):
        raise ImproperlyConfigured(f"{name} must be a finite number, got {value!r}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [part.strip() for part in value.split(",") if part.strip()]


def database_from_url(url: str) -> dict:
    """Django DATABASES entry for a ``sqlite:///path`` or ``postgres://user:pass@host:port/name`` URL."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = unquote(parsed.path)
        # sqlite:///rel/path is relative to the working directory; sqlite:////abs/path is absolute.
        # Writers take the lock when their transaction begins and wait up to 20 s for it: two gunicorn workers
        # (or runserver's threads) writing at once then queue instead of failing with "database is locked".
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": path[1:] or ":memory:",
                "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20}}
    if parsed.scheme in {"postgres", "postgresql", "pgsql"}:
        if not parsed.path.strip("/"):
            raise ImproperlyConfigured(f"DATABASE_URL names no database: {url!r}")
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parsed.path.lstrip("/")),
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
            # Parameters bound by the server, and a statement run 5 times on a connection prepared: planning
            # costs PostgreSQL about 0.5 ms a statement, more than the hot path's reads take to run.
            # (PgBouncer in transaction mode needs 1.21 or newer, with max_prepared_statements set.)
            "OPTIONS": {"server_side_binding": True, "prepare_threshold": 5},
        }
    raise ImproperlyConfigured(f"DATABASE_URL scheme must be sqlite or postgres, got {parsed.scheme!r}")


def model_storage(kind: str, model_dir) -> dict:
    """The STORAGES["models"] entry for ``MODEL_STORAGE``: "" the local MODEL_DIR; "s3" the bucket
    MODEL_STORAGE_BUCKET (at MODEL_STORAGE_ENDPOINT_URL for an S3-compatible server, under
    MODEL_STORAGE_PREFIX, default "models")."""
    if kind == "":
        return {"BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(model_dir), "allow_overwrite": True}}
    if kind == "s3":
        bucket = (env_str("MODEL_STORAGE_BUCKET", "") or "").strip()
        if not bucket:
            raise ImproperlyConfigured("MODEL_STORAGE=s3 needs MODEL_STORAGE_BUCKET")
        return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
            "bucket_name": bucket, "endpoint_url": (env_str("MODEL_STORAGE_ENDPOINT_URL", "") or "").strip() or None,
            "location": (env_str("MODEL_STORAGE_PREFIX", "models") or "").strip("/"),
            "file_overwrite": True, "default_acl": None, "querystring_auth": False}}
    raise ImproperlyConfigured(f'MODEL_STORAGE must be "" (MODEL_DIR) or "s3", got {kind!r}')
