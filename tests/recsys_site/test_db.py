"""recsys_site.db and the database settings behind it, on the database the suite runs on."""
import numpy as np
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


NUMBERS = ("SELECT {i}, {f}, {i} FROM (SELECT n, CAST(n AS DOUBLE PRECISION) / 4 AS x FROM (SELECT 1 AS n "
           "UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 70000000000) t) r ORDER BY n")


def _numbers(nullable: bool = False) -> str:
    i = db.as_bigint("n") if not nullable else db.as_bigint("CASE WHEN n = 2 THEN NULL ELSE n END")
    return NUMBERS.format(i=i, f="x")


@pytest.mark.parametrize("block_bytes", [1, 10**6], ids=["a row a block", "one block"])
def test_number_chunks_give_the_rows_columns_as_arrays_however_the_rows_are_cut(monkeypatch, block_bytes):
    monkeypatch.setattr(db, "COPY_BLOCK_BYTES", block_bytes)

    chunks = list(db.number_chunks(_numbers(), "ifi", size=3))

    ints, floats, again = (np.concatenate(column) for column in zip(*chunks, strict=True))
    assert ints.dtype == np.int64 and floats.dtype == np.float64
    assert ints.tolist() == again.tolist() == [1, 2, 3, 70_000_000_000]
    assert floats.tolist() == [0.25, 0.5, 0.75, 17_500_000_000.0]
    if connection.vendor == "postgresql" and block_bytes == 1:
        assert len(chunks) == 4  # each row as it came, none lost or doubled at the cuts


def test_number_chunks_of_nothing_are_none():
    assert list(db.number_chunks("SELECT 1, CAST(2 AS DOUBLE PRECISION) WHERE 1 = 0", "if")) == []


def test_a_null_in_number_chunks_is_refused_on_postgresql():
    """The binary COPY's rows are read as fixed-width records: a NULL (or a column of another type) would
    shift every field after it, so it is an error, not a wrong number."""
    if connection.vendor != "postgresql":
        pytest.skip("the binary COPY is PostgreSQL's (CI runs this on PostgreSQL)")
    with pytest.raises(ValueError, match="NULL"):
        list(db.number_chunks(_numbers(nullable=True), "ifi"))
    with pytest.raises(ValueError, match="another type"):
        list(db.number_chunks("SELECT 1::int4, 2.0::float8", "if"))
