"""Write a generated demo world into the database, fast, and remove it again.

Rows go in through ``RowWriter``: COPY on PostgreSQL, batched ``executemany`` INSERTs elsewhere. Both
skip ``Model.save()`` and ``bulk_create()`` on purpose: the seeder picks primary keys itself (so that a
position can name its startup before either is read back) and every timestamp (``auto_now_add`` would
stamp ``now()`` and break determinism). The database constraints still check every row.

Demo users are recognised by their e-mail domain, ``DEMO_EMAIL_DOMAIN``; ``flush_demo_data`` removes
them and everything that hangs off them, and leaves every other user (the staff ``admin`` included).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice

import numpy as np
from django.contrib.auth import get_user_model
from django.core.management.color import no_style
from django.db import connection
from django.db.models import Field, ManyToManyField, Max, Model, Q

from profiles.models import Developer, Founder, Industry, Interaction, Investor, Position, Skill, Startup

from . import vocabulary as vocab
from .world import (
    DEVELOPER_TARGET,
    INVESTOR_TARGET,
    KINDS,
    POSITION,
    POSITION_STATUSES,
    STARTUP,
    Interactions,
    SkillSets,
    World,
    applicants_per_position,
)

DEMO_EMAIL_DOMAIN = "demo.example.com"
INSERT_BATCH = 5_000


class RowWriter:
    """Appends rows given as tuples of plain Python values to one table, with explicit columns."""

    def __init__(self) -> None:
        self.is_postgres = connection.vendor == "postgresql"

    def insert(self, model: type[Model], field_names: list[str], rows: Iterable[tuple]) -> int:
        concrete = [_concrete_field(model, name) for name in field_names]
        fields = [field for field, _ in concrete]
        table = connection.ops.quote_name(model._meta.db_table)
        columns = ", ".join(connection.ops.quote_name(column) for _, column in concrete)
        # Only timestamps and JSON need the backend's own conversion; ints, strings and booleans pass as they are.
        converters = [
            (index, field.get_db_prep_save) for index, field in enumerate(fields)
            if field.get_internal_type() in {"DateTimeField", "JSONField"}
        ]
        if converters:
            rows = (self._convert(row, converters) for row in rows)
        with connection.cursor() as cursor:
            if self.is_postgres:
                return self._copy(cursor, table, columns, rows)
            return self._insert_batches(cursor, table, columns, len(fields), rows)

    @staticmethod
    def _convert(row: tuple, converters) -> tuple:
        values = list(row)
        for index, prepare in converters:
            values[index] = prepare(values[index], connection)
        return tuple(values)

    @staticmethod
    def _copy(cursor, table: str, columns: str, rows: Iterable[tuple]) -> int:
        count = 0
        # The raw psycopg cursor's errors are not Django's; wrap them so callers can catch IntegrityError.
        with connection.wrap_database_errors, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        return count

    @staticmethod
    def _insert_batches(cursor, table: str, columns: str, width: int, rows: Iterable[tuple]) -> int:
        sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * width)})"
        count, rows = 0, iter(rows)
        while batch := list(islice(rows, INSERT_BATCH)):
            cursor.executemany(sql, batch)
            count += len(batch)
        return count


# Secondary indexes (not those behind a primary key or unique constraint) and foreign keys of a table.
_PLAIN_INDEXES_SQL = """
    SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
    WHERE i.indrelid = %s::regclass
      AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x'))
    ORDER BY 1
"""
_FOREIGN_KEYS_SQL = """
    SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'
    ORDER BY 1
"""


# What ``drop_indexes_and_foreign_keys`` removed: (table, [(name, definition)] of foreign keys and of indexes).
Dropped = list[tuple[str, list[tuple[str, str]], list[tuple[str, str]]]]


def drop_indexes_and_foreign_keys(models: list[type[Model]]) -> Dropped:
    """On PostgreSQL, drop the tables' secondary indexes and foreign keys before a bulk load.

    This is PostgreSQL's own advice for populating a database: building an index once and checking a
    foreign key with one join are many times faster than doing both row by row (1M interactions take
    ~20 s instead of ~60 s here). ``restore_indexes_and_foreign_keys`` puts them back from the catalog's
    own definitions, so they return exactly as migrations made them, and re-adding a foreign key checks
    every row. Must run inside a transaction, so that a failed load rolls the drops back too. Elsewhere
    (SQLite) it does nothing.
    """
    if connection.vendor != "postgresql":
        return []
    if not connection.in_atomic_block:
        raise RuntimeError("dropping indexes for a bulk load must happen inside a transaction")
    dropped = []
    with connection.cursor() as cursor:
        # Index builds sort in memory; the default 64 MB spills to disk on the interactions table.
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for model in models:
            table = model._meta.db_table
            cursor.execute(_FOREIGN_KEYS_SQL, [table])
            foreign_keys = cursor.fetchall()
            cursor.execute(_PLAIN_INDEXES_SQL, [table])
            indexes = cursor.fetchall()
            for name, _ in foreign_keys:
                cursor.execute(f"ALTER TABLE {connection.ops.quote_name(table)} "
                               f"DROP CONSTRAINT {connection.ops.quote_name(name)}")
            for name, _ in indexes:
                cursor.execute(f"DROP INDEX {name}")  # regclass text: already quoted where needed
            dropped.append((table, foreign_keys, indexes))
    return dropped


def restore_indexes_and_foreign_keys(dropped: Dropped) -> None:
    with connection.cursor() as cursor:
        for table, foreign_keys, indexes in dropped:
            for _, definition in indexes:
                cursor.execute(definition)
            for name, definition in foreign_keys:
                cursor.execute(f"ALTER TABLE {connection.ops.quote_name(table)} "
                               f"ADD CONSTRAINT {connection.ops.quote_name(name)} {definition}")


def to_datetimes(seconds: np.ndarray) -> list[datetime]:
    """Unix seconds to aware UTC datetimes."""
    return [moment.replace(tzinfo=UTC) for moment in seconds.astype("datetime64[s]").astype(object)]


def analyze(tables: list[str]) -> None:
    """Refresh the planner's statistics: right after a bulk load they describe the empty tables, and
    plans made from them (nested loops over "one row") turn a flush or a report into minutes."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {', '.join(connection.ops.quote_name(table) for table in tables)}")
        elif connection.vendor == "sqlite":
            for table in tables:
                cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")


def _concrete_field(model: type[Model], name: str) -> tuple[Field, str]:
    """``model``'s field ``name`` and its column: it must have one (not be the other side of a relation)."""
    field = model._meta.get_field(name)
    if not isinstance(field, Field) or not field.column:
        raise TypeError(f"{model.__name__}.{name} has no column to write")
    return field, field.column


def _link_table(model: type[Model], name: str) -> tuple[ManyToManyField, type[Model]]:
    """``model``'s many-to-many field ``name`` and its link table (Django makes one where none is given)."""
    field = model._meta.get_field(name)
    if not isinstance(field, ManyToManyField) or field.remote_field.through is None:
        raise TypeError(f"{model.__name__}.{name} is not a many-to-many field")
    return field, field.remote_field.through


def seeded_models() -> list[type[Model]]:
    """Every table the seeder writes (besides the skill and industry vocabularies)."""
    links = [_link_table(model, field.name)[1] for model in (Developer, Founder, Investor, Startup, Position)
             for field in model._meta.local_many_to_many]
    return [get_user_model(), Developer, Founder, Investor, Startup, Position, *links, Interaction]


def demo_users():
    return get_user_model().objects.filter(email__endswith=f"@{DEMO_EMAIL_DOMAIN}")


def flush_demo_data() -> int:
    """Delete the demo users, their startups (with positions) and every interaction touching them.

    Our own tables are emptied with one set-based DELETE each, children first. Django's collector
    would load every row and send 100,000-id IN lists (half a minute for the big world); it is left
    only the users, for the references other apps may hold to them (tokens, admin log, training runs).
    """
    users = demo_users()
    user_ids = users.values("pk")
    startups = Startup.objects.filter(founders__user__in=user_ids).values("pk")
    positions = Position.objects.filter(startup__in=startups).values("pk")
    count = users.count()
    Interaction.objects.filter(Q(user__in=user_ids) | Q(position__in=positions) | Q(startup__in=startups)
                               | Q(developer__in=user_ids) | Q(investor__in=user_ids)).delete()
    _delete_where(Position.required_skills.through, "position_id", positions)
    _delete_where(Position, "id", positions)
    _delete_where(Startup.required_skills.through, "startup_id", startups)
    _delete_where(Startup, "id", startups)  # the subquery still sees the founder links, deleted next
    _delete_where(Startup.founders.through, "founder_id", user_ids)
    for model in (Developer, Founder, Investor):
        for field in model._meta.local_many_to_many:
            _delete_where(_link_table(model, field.name)[1], field.m2m_column_name(), user_ids)
        _delete_where(model, "user_id", user_ids)
    users.delete()
    # Run the deferred foreign-key checks the deletes queued: it proves nothing dangles, and PostgreSQL
    # refuses to alter a table (as the bulk load then does) while such checks are pending.
    connection.check_constraints(table_names=[model._meta.db_table for model in seeded_models()])
    return count


def _delete_where(model: type[Model], column: str, ids) -> None:
    """DELETE FROM model's table WHERE column IN (the ids queryset's SQL); foreign keys are checked at commit."""
    sql, params = ids.query.sql_with_params()
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {quote(model._meta.db_table)} WHERE {quote(column)} IN ({sql})", params)


def ensure_vocabulary(world: World) -> tuple[np.ndarray, np.ndarray]:
    """Create the industries and skills the world uses if missing; their ids, in the world's index order."""
    voc = world.vocabulary
    Industry.objects.bulk_create([Industry(name=name) for name in voc.industry_names], ignore_conflicts=True)
    industry_ids = dict(Industry.objects.filter(name__in=voc.industry_names).values_list("name", "id"))
    Skill.objects.bulk_create(
        [Skill(name=name, industry_id=None if industry is None else industry_ids.get(industry))
         for name, industry in zip(voc.skill_names, voc.skill_industry, strict=True)],
        ignore_conflicts=True,
    )
    skill_ids = dict(Skill.objects.filter(name__in=voc.skill_names).values_list("name", "id"))
    return (np.array([industry_ids[name] for name in voc.industry_names]),
            np.array([skill_ids[name] for name in voc.skill_names]))


class WorldStore:
    """Writes one world, table by table; each ``write_*`` returns the number of rows it wrote."""

    def __init__(self, world: World, interactions: Interactions, password_hash: str) -> None:
        self.world = world
        self.interactions = interactions
        self.password_hash = password_hash
        self.writer = RowWriter()
        self.industry_ids, self.skill_ids = ensure_vocabulary(world)
        self.user_model = get_user_model()
        self._lock_tables_with_chosen_ids()
        # New rows take ids after the current maximum; sequences are moved past them in ``finish``.
        self.first_user_id = self._next_id(self.user_model)
        self.first_startup_id = self._next_id(Startup)
        self.first_position_id = self._next_id(Position)
        people = world.people
        self.user_ids = self.first_user_id + np.arange(len(people.roles))
        self.developer_ids = self.user_ids[people.developers]
        self.founder_ids = self.user_ids[people.founders]
        self.investor_ids = self.user_ids[people.investors]
        self.startup_ids = self.first_startup_id + np.arange(len(world.startups.name))
        self.position_ids = self.first_position_id + np.arange(len(world.positions.title))

    def _lock_tables_with_chosen_ids(self) -> None:
        """On PostgreSQL keep other writers out of the tables whose ids we pick, until we commit."""
        if self.writer.is_postgres:
            tables = ", ".join(connection.ops.quote_name(model._meta.db_table)
                               for model in (self.user_model, Startup, Position))
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {tables} IN SHARE ROW EXCLUSIVE MODE")

    @staticmethod
    def _next_id(model: type[Model]) -> int:
        return (model._default_manager.aggregate(top=Max("pk"))["top"] or 0) + 1

    def write_users(self) -> int:
        people = self.world.people
        joined = to_datetimes(people.joined)
        rows = (
            (int(user_id), self.password_hash, None, False, username, first, last,
             f"{username}@{DEMO_EMAIL_DOMAIN}", False, True, joined[index])
            for index, (user_id, username, first, last) in enumerate(
                zip(self.user_ids, people.usernames, people.first_names, people.last_names, strict=True))
        )
        return self.writer.insert(self.user_model, [
            "id", "password", "last_login", "is_superuser", "username", "first_name", "last_name", "email",
            "is_staff", "is_active", "date_joined"], rows)

    def write_profiles(self) -> int:
        w, locations = self.world, self.world.vocabulary.location_names
        d, f, i = w.developers, w.founders, w.investors
        count = self.writer.insert(Developer, [
            "user", "headline", "years_experience", "remote_preference", "desired_salary", "location"], (
            (int(user_id), d.headline[n], int(d.years[n]), vocab.REMOTE_PREFERENCES[d.remote_preference[n]],
             int(d.desired_salary[n]), locations[d.location[n]])
            for n, user_id in enumerate(self.developer_ids)))
        count += self.writer.insert(Founder, ["user", "years_experience", "location"], (
            (int(user_id), int(f.years[n]), locations[f.location[n]]) for n, user_id in enumerate(self.founder_ids)))
        count += self.writer.insert(Investor, [
            "user", "firm", "preferred_stages", "check_size_min", "check_size_max", "location"], (
            (int(user_id), i.firm[n], [vocab.STAGES[s] for s in np.flatnonzero(i.stages[n])],
             int(i.check_min[n]), int(i.check_max[n]), locations[i.location[n]])
            for n, user_id in enumerate(self.investor_ids)))
        return count

    def write_startups(self) -> int:
        s, locations = self.world.startups, self.world.vocabulary.location_names
        created, closes = to_datetimes(s.created), to_datetimes(s.round_closes)
        return self.writer.insert(Startup, [
            "id", "name", "industry", "stage", "team_size", "funding_raised", "location", "remote_friendly",
            "description", "raising", "round_size", "round_closes_at", "created_at", "updated_at"], (
            (int(startup_id), s.name[n], int(self.industry_ids[s.industry[n]]), vocab.STAGES[s.stage[n]],
             int(s.team_size[n]), int(s.funding_raised[n]), locations[s.location[n]], bool(s.remote_friendly[n]),
             s.description[n], bool(s.raising[n]), int(s.next_round[n]) if s.raising[n] else None,
             closes[n] if s.raising[n] else None, created[n], created[n])
            for n, startup_id in enumerate(self.startup_ids)))

    def write_positions(self) -> int:
        p, s, locations = self.world.positions, self.world.startups, self.world.vocabulary.location_names
        created = to_datetimes(p.created)
        # Position.applicants as the events will say (profiles.services keeps it from then on): counted from the
        # events in memory and written with the rows, where an UPDATE per position took minutes at 800,000.
        applicants = applicants_per_position(self.world, self.interactions)

        def salary(value) -> int | None:
            return None if value < 0 else int(value)

        return self.writer.insert(Position, [
            "id", "startup", "title", "description", "salary_min", "salary_max", "remote",
            "years_experience_required", "location", "status", "openings", "applicants", "created_at", "updated_at"], (
            (int(position_id), int(self.startup_ids[p.startup[n]]), p.title[n], p.description[n],
             salary(p.salary_min[n]), salary(p.salary_max[n]), bool(p.remote[n]), int(p.years_required[n]),
             "Remote" if p.remote[n] else locations[s.location[p.startup[n]]], POSITION_STATUSES[p.status[n]],
             int(p.openings[n]), int(applicants[n]), created[n], created[n])
            for n, position_id in enumerate(self.position_ids)))

    def write_links(self) -> int:
        """The many-to-many rows: skills, preferred industries and startup founders."""
        w = self.world
        count = 0
        for model, field, owner_ids, skills in (
            (Developer, "skills", self.developer_ids, w.developers.skills),
            (Founder, "skills", self.founder_ids, w.founders.skills),
            (Startup, "required_skills", self.startup_ids, w.startups.skills),
            (Position, "required_skills", self.position_ids, w.positions.skills),
        ):
            count += self._insert_pairs(model, field, *self._skill_pairs(owner_ids, skills))
        for person, field, owner_ids, preferred in (
            (Developer, "preferred_industries", self.developer_ids, w.developers.preferred_industries),
            (Investor, "preferred_industries", self.investor_ids, w.investors.preferred_industries),
        ):
            owners = np.repeat(owner_ids, [len(chosen) for chosen in preferred])
            industries = self.industry_ids[np.concatenate(preferred)] if preferred else np.zeros(0, dtype=np.int64)
            count += self._insert_pairs(person, field, owners, industries)
        pairs = w.startups.founder_pairs
        count += self._insert_pairs(Startup, "founders", self.startup_ids[pairs[:, 0]], self.founder_ids[pairs[:, 1]])
        return count

    def _skill_pairs(self, owner_ids: np.ndarray, skills: SkillSets) -> tuple[np.ndarray, np.ndarray]:
        rows, columns = np.nonzero(skills.indices >= 0)
        return owner_ids[rows], self.skill_ids[skills.indices[rows, columns]]

    def _insert_pairs(self, model: type[Model], field_name: str, owners: np.ndarray, targets: np.ndarray) -> int:
        field, through = _link_table(model, field_name)
        names = [field.m2m_field_name(), field.m2m_reverse_field_name()]
        return self.writer.insert(through, names, zip(owners.tolist(), targets.tolist(), strict=True))

    def write_interactions(self, progress: Callable[[int, int], None] | None = None, chunk: int = 200_000) -> int:
        interactions = self.interactions
        total = len(interactions.user)
        count = 0
        for start in range(0, total, chunk):
            count += self.writer.insert(Interaction, [
                "user", "kind", "position", "startup", "developer", "investor", "created_at"],
                self._interaction_rows(interactions, slice(start, start + chunk)))
            if progress:
                progress(count, total)
        return count

    def _interaction_rows(self, interactions: Interactions, part: slice) -> Iterator[tuple]:
        target_type, target = interactions.target_type[part], interactions.target[part]
        columns = []
        for wanted, ids in ((POSITION, self.position_ids), (STARTUP, self.startup_ids),
                            (DEVELOPER_TARGET, self.developer_ids), (INVESTOR_TARGET, self.investor_ids)):
            column = np.full(len(target), None, dtype=object)
            chosen = target_type == wanted
            column[chosen] = ids[target[chosen]].tolist()
            columns.append(column.tolist())
        users = self.user_ids[interactions.user[part]].tolist()
        kinds = np.array(KINDS, dtype=object)[interactions.kind[part]].tolist()
        return zip(users, kinds, *columns, to_datetimes(interactions.created[part]), strict=True)

    def finish(self) -> None:
        """Check the deferred foreign keys now (not silently at commit), refresh the planner's statistics,
        and move the id sequences past the ids we chose, so that later inserts do not collide with them."""
        tables = [model._meta.db_table for model in seeded_models()]
        connection.check_constraints(table_names=tables)
        analyze(tables)
        statements = connection.ops.sequence_reset_sql(no_style(), [self.user_model, Startup, Position])
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
