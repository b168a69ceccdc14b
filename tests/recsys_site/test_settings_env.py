"""The environment helpers fail loudly on bad values instead of guessing."""
import pytest
from django.core.exceptions import ImproperlyConfigured

from recsys_site.env import database_from_url, env_bool, env_int, env_list


def test_env_bool_reads_common_spellings(monkeypatch):
    monkeypatch.setenv("FLAG", "Yes")
    assert env_bool("FLAG", False) is True
    monkeypatch.setenv("FLAG", "0")
    assert env_bool("FLAG", True) is False


def test_env_bool_refuses_an_unknown_value(monkeypatch):
    monkeypatch.setenv("FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="FLAG"):
        env_bool("FLAG", False)


def test_env_int_refuses_a_non_integer(monkeypatch):
    monkeypatch.setenv("WORKERS", "two")
    with pytest.raises(ImproperlyConfigured, match="WORKERS must be an integer"):
        env_int("WORKERS", 1)


def test_env_int_and_list_use_defaults_when_unset(monkeypatch):
    monkeypatch.delenv("WORKERS", raising=False)
    monkeypatch.delenv("HOSTS", raising=False)
    assert env_int("WORKERS", 3) == 3
    assert env_list("HOSTS", ["a"]) == ["a"]


def test_env_list_splits_on_commas(monkeypatch):
    monkeypatch.setenv("HOSTS", " example.com, api.example.com ,")
    assert env_list("HOSTS", []) == ["example.com", "api.example.com"]


def test_postgres_url_becomes_a_postgresql_database():
    db = database_from_url("postgres://me:s%40cret@db.internal:5433/recsys")
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["USER"], db["PASSWORD"], db["HOST"], db["PORT"]) == (
        "recsys", "me", "s@cret", "db.internal", "5433")
    assert db["OPTIONS"] == {"server_side_binding": True, "prepare_threshold": 5}


def test_sqlite_urls_are_relative_or_absolute():
    assert database_from_url("sqlite:///var/db.sqlite3")["NAME"] == "var/db.sqlite3"
    assert database_from_url("sqlite:////tmp/db.sqlite3")["NAME"] == "/tmp/db.sqlite3"


def test_sqlite_writers_queue_for_the_lock_instead_of_failing():
    options = database_from_url("sqlite:///var/db.sqlite3")["OPTIONS"]
    assert options["transaction_mode"] == "IMMEDIATE" and options["timeout"] >= 5


@pytest.mark.parametrize("url", ["mysql://root@localhost/x", "postgres://localhost"])
def test_unsupported_or_incomplete_database_urls_are_refused(url):
    with pytest.raises(ImproperlyConfigured):
        database_from_url(url)
