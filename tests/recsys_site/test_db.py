"""recsys_site.db and the database settings behind it, on the database the suite runs on."""
import pytest
from django.db import connection

from recsys_site import db

pytestmark = pytest.mark.django_db


def test_is_in_matches_any_number_of_values():
    values = db.rows("SELECT n FROM (SELECT 1 AS n UNION ALL SELECT 2 UNION ALL SELECT 3) t "
                     f"WHERE {db.is_in('n', [1, 3])[0]} ORDER BY n", db.is_in("n", [1, 3])[1])
    assert values == [(1,), (3,)]
    assert db.rows(f"SELECT 1 WHERE {db.is_in('1', [])[0]}", db.is_in("1", [])[1]) == []


def test_repeated_statements_are_prepared_on_postgresql():
    """Planning a statement costs PostgreSQL about 0.5 ms, more than running the hot path's reads: each
    connection prepares a statement it has run a few times, and only plans it again if asked for."""
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's (CI runs this on PostgreSQL)")
    sql = "SELECT count(*) FROM auth_user WHERE id = %s"
    for user_id in range(6):
        assert db.rows(sql, [user_id]) == [(0,)]

    prepared = db.rows("SELECT statement FROM pg_prepared_statements")
    assert any("FROM auth_user WHERE id = $1" in statement for statement, in prepared)
