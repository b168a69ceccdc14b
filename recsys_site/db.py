"""Plain SQL for the few reads on the recommendation hot path.

Building and compiling a queryset costs 0.5 to 1 ms of Python per query on the 2-core machine the
latency aim is set for; the query itself takes about 0.1 ms. A request for recommendations makes a
handful of such reads, so those few are written once here as parametrised SQL (portable between
PostgreSQL and SQLite), naming the models' tables through ``table`` and only plain columns (``id``,
``<field>_id``, unrenamed fields). Everything else uses the ORM.
"""
from django.db import connection


def table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def is_in(column: str, values) -> tuple[str, list]:
    """(condition, params) for ``column`` being one of ``values``. On PostgreSQL one array parameter, so
    the statement's text does not vary with the number of values and psycopg prepares it once."""
    values = list(values)
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)", [values]
    return f"{column} IN ({', '.join(['%s'] * len(values))})", values


def rows(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def chunks(sql: str, params=(), size: int = 100_000):
    """The rows of ``sql``, ``size`` at a time (through a server-side cursor on PostgreSQL): a whole table's
    rows never sit in memory together."""
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while chunk := cursor.fetchmany(size):
            yield chunk


def epoch_seconds(column: str) -> str:
    """SQL for the seconds since 1970 of the datetime ``column``, as a float (to the microsecond on
    PostgreSQL, the millisecond on SQLite): a key numpy can sort rows by, where the datetimes would be Python
    objects."""
    if connection.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM {column})::float8"
    return f"(julianday({column}) - 2440587.5) * 86400.0"
