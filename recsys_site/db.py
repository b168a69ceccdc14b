"""Plain SQL for the few reads on the recommendation hot path.

Building and compiling a queryset costs 0.5 to 1 ms of Python per query on the 2-core machine the
latency aim is set for; the query itself takes about 0.1 ms. A request for recommendations makes a
handful of such reads, so those few are written once here as parametrised SQL (portable between
PostgreSQL and SQLite), naming the models' tables through ``table`` and only plain columns (``id``,
``<field>_id``, unrenamed fields). Everything else uses the ORM.
"""
import numpy as np
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


def as_bigint(expression: str) -> str:
    """SQL for ``expression`` as a 64-bit integer: what :func:`number_chunks` reads as "i" on PostgreSQL."""
    return f"({expression})::int8" if connection.vendor == "postgresql" else expression


def epoch_seconds(column: str) -> str:
    """SQL for the seconds since 1970 of the datetime ``column``, as a float (to the microsecond on
    PostgreSQL, the millisecond on SQLite): a key numpy can sort rows by, where the datetimes would be Python
    objects."""
    if connection.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM {column})::float8"
    return f"(julianday({column}) - 2440587.5) * 86400.0"


# PostgreSQL's binary COPY: a fixed header, then per row a field count and each field's length and bytes,
# then a trailer (https://www.postgresql.org/docs/current/sql-copy.html, "Binary Format")
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
COPY_TRAILER = b"\xff\xff"
COPY_BLOCK_BYTES = 32 * 2**20  # what is turned into arrays at a time
NOT_THE_COLUMNS = "a row of the binary COPY is not the columns asked for (a NULL, or another type)"


def number_chunks(sql: str, kinds: str, size: int = 100_000):
    """The rows of ``sql``, whose columns are never NULL and are each a bigint ("i" in ``kinds``) or a
    float8 ("f"), as one numpy array per column, a chunk of rows at a time (int64 and float64).

    On PostgreSQL through a binary COPY, whose fixed-width rows numpy reads as they come: a table of ten
    million events in 8 s where fetching them as Python tuples and making arrays of those took 32. Elsewhere
    (SQLite) through :func:`chunks`, ``size`` rows at a time."""
    if connection.vendor != "postgresql":
        for chunk in chunks(sql, size=size):
            yield [np.array(column, dtype=np.float64 if kind == "f" else np.int64)
                   for column, kind in zip(zip(*chunk, strict=True), kinds, strict=True)]
        return
    row = np.dtype([("fields", ">i2")] + [field for n, kind in enumerate(kinds)
                                          for field in ((f"length{n}", ">i4"), (f"value{n}", f">{kind}8"))])
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT BINARY)") as copy:
        pending, started = bytearray(), False
        for data in copy:
            pending += data
            if not started and len(pending) >= len(COPY_SIGNATURE) + 8:
                header = _copy_header_length(pending)
                if len(pending) >= header:  # the header's extension, if any, has come whole
                    del pending[:header]
                    started = True
            if started and len(pending) >= max(COPY_BLOCK_BYTES, row.itemsize):
                yield _copied_columns(pending, row, kinds)
        if bytes(pending[-len(COPY_TRAILER):]) != COPY_TRAILER:
            raise ValueError("the binary COPY ended without its trailer")
        del pending[-len(COPY_TRAILER):]
        if len(pending) % row.itemsize:
            raise ValueError(NOT_THE_COLUMNS)
        if pending:
            yield _copied_columns(pending, row, kinds)


def _copy_header_length(data: bytearray) -> int:
    if bytes(data[:len(COPY_SIGNATURE)]) != COPY_SIGNATURE:
        raise ValueError("not a binary COPY")
    extension = int.from_bytes(data[len(COPY_SIGNATURE) + 4:len(COPY_SIGNATURE) + 8], "big")
    return len(COPY_SIGNATURE) + 8 + extension


def _copied_columns(pending: bytearray, row: np.dtype, kinds: str) -> list[np.ndarray]:
    """The whole rows at the start of ``pending`` as columns, taken out of it (a partial row stays)."""
    whole = len(pending) // row.itemsize * row.itemsize
    rows = np.frombuffer(bytes(pending[:whole]), dtype=row)
    del pending[:whole]
    if len(rows) and ((rows["fields"] != len(kinds)).any()
                      or any((rows[f"length{n}"] != 8).any() for n in range(len(kinds)))):
        raise ValueError(NOT_THE_COLUMNS)
    return [rows[f"value{n}"].astype(np.float64 if kind == "f" else np.int64) for n, kind in enumerate(kinds)]
