"""Fill the database with a believable, deterministic demo world (see profiles/demo/world.py).

    python manage.py seed_demo                      # a small world: 300 users, 120 startups, 400 positions
    python manage.py seed_demo --flush --users 100000 --startups 20000 --positions 50000 --interactions 1000000

Choices worth knowing:
- Re-running: demo users are recognised by their e-mail domain (@demo.example.com). If any exist the
  command refuses and asks for ``--flush``, which first removes the previous demo world (its users, their
  startups, positions and interactions) and leaves every other row alone, the staff ``admin`` included;
  ``--if-empty`` instead leaves an existing demo world alone and succeeds (for ``make demo``).
- Determinism: the same ``--seed`` (and sizes) gives the same rows: names, skills, texts and timestamps.
  Time is measured back from ``--end`` (default DEFAULT_END, a fixed date rather than today, so that a
  seed means the same world on any day); interactions fall in the 180 days before it. Primary keys follow
  whatever rows already exist.
- Accepts: ``--interactions`` counts the events of the world's channels (views, likes, applications,
  contacts ...); the other side's ``accept`` events, answering some of the applications and contacts, come on
  top (194 in the default world: profiles.demo.world.make_acceptances).
- Passwords: demo users get an unusable password unless ``--password`` is given, in which case all of them
  share that one password (hashed once, with a salt derived from the seed). No demo user is staff.
- Speed: rows are written with COPY on PostgreSQL and batched INSERTs elsewhere, all in one transaction.
  On PostgreSQL the written tables' secondary indexes and foreign keys are dropped for the load and
  rebuilt (and every row re-checked) before commit, so those tables are locked while it runs: seed a
  demo or staging database, not one serving traffic. The big world takes about 50 s (bench/seed_demo.py).
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import UTC, datetime

from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX, make_password
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError, transaction

from profiles.demo import store
from profiles.demo.world import WorldSize, make_interactions, make_world, usable_channels

DEFAULT_END = "2026-11-01"
DEFAULTS = {"users": 300, "positions": 400, "startups": 120, "interactions": 8000}


class Command(BaseCommand):
    help = "Create a deterministic demo world: users of every role, startups, positions and interactions."

    def add_arguments(self, parser: CommandParser) -> None:
        for name, default in DEFAULTS.items():
            parser.add_argument(f"--{name}", type=int, default=default, help=f"How many {name} (default {default}).")
        parser.add_argument("--seed", type=int, default=0, help="Random seed; the same seed gives the same world.")
        parser.add_argument("--end", default=DEFAULT_END,
                            help=f"Date (UTC) the world's clock stops at, YYYY-MM-DD (default {DEFAULT_END}).")
        parser.add_argument("--flush", action="store_true", help="Remove the existing demo world first.")
        parser.add_argument("--if-empty", action="store_true",
                            help="Do nothing (and succeed) if a demo world already exists, e.g. for `make demo`.")
        parser.add_argument("--password", default=None,
                            help="One password for every demo user (default: unusable, nobody can log in as them).")

    def handle(self, *args, **options) -> None:
        size = WorldSize(**{name: options[name] for name in DEFAULTS})
        seed, end = options["seed"], self._parse_end(options["end"])
        check_arguments(size, seed)
        self.verbosity = options["verbosity"]
        if options["if_empty"]:
            if options["flush"]:
                raise CommandError("--if-empty and --flush contradict each other; pass one of them")
            if (existing := store.demo_users().count()) > 0:
                self._say(f"A demo world is already there ({existing} demo users); leaving it as it is.")
                return
        started = time.perf_counter()
        try:
            with transaction.atomic():
                self._seed(size, seed, end, options["flush"], self._password_hash(options["password"], seed))
        except IntegrityError as error:
            raise CommandError(f"The database refused a demo row, nothing was written: {error}") from error
        self._say(f"Demo world ready in {time.perf_counter() - started:.1f} s "
                  f"(seed {seed}, clock stops at {options['end']}).")

    def _seed(self, size: WorldSize, seed: int, end: int, flush: bool, password_hash: str) -> None:
        if not flush and (existing := store.demo_users().count()) > 0:
            raise CommandError(
                f"The database already holds a demo world ({existing} users with @{store.DEMO_EMAIL_DOMAIN} "
                "e-mails). Run seed_demo --flush to replace it.")
        with self._phase("generate people, startups, positions") as phase:
            world = make_world(seed, size, end, progress=self._part_made(time.perf_counter()))
            phase["rows"] = size.users + size.startups + size.positions
        if size.interactions and not usable_channels(world):
            raise CommandError("--interactions needs users with something to interact with: developers and "
                               "positions or startups, investors and startups, or founders and developers/investors.")
        with self._phase("generate interactions") as phase:
            interactions = make_interactions(world, seed, progress=self._progress("generated"))
            phase["rows"] = len(interactions.user)
        with self._phase("drop indexes and FKs (PostgreSQL only)"):
            dropped = store.drop_indexes_and_foreign_keys(store.seeded_models())
        if flush:
            with self._phase("flush previous demo world") as phase:
                phase["rows"] = store.flush_demo_data()
        writer = store.WorldStore(world, interactions, password_hash)
        for name, write in (("users", writer.write_users), ("profiles", writer.write_profiles),
                            ("startups", writer.write_startups), ("positions", writer.write_positions),
                            ("skills, industries, founders (links)", writer.write_links)):
            with self._phase(name) as phase:
                phase["rows"] = write()
        with self._phase("interactions") as phase:
            phase["rows"] = writer.write_interactions(progress=self._progress("written"))
        with self._phase("rebuild indexes and FKs, check, analyze"):
            store.restore_indexes_and_foreign_keys(dropped)
            writer.finish()

    @staticmethod
    def _parse_end(text: str) -> int:
        try:
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError as error:
            raise CommandError(f"--end must be a date like {DEFAULT_END}, got {text!r}") from error
        return int(day.timestamp())

    @staticmethod
    def _password_hash(password: str | None, seed: int) -> str:
        if password is None:
            return f"{UNUSABLE_PASSWORD_PREFIX}demo-user"
        if not password:
            raise CommandError("--password must not be empty")
        return make_password(password, salt=f"seeddemo{seed}")

    def _say(self, message: str) -> None:
        if self.verbosity > 0:
            self.stdout.write(message)

    @contextmanager
    def _phase(self, name: str):
        """Times a block and prints its rows and rate; the block sets ``phase["rows"]``."""
        phase = {"rows": 0}
        started = time.perf_counter()
        yield phase
        seconds = time.perf_counter() - started
        rate = f"{phase['rows'] / seconds:>10,.0f} rows/s" if phase["rows"] and seconds > 0 else ""
        self._say(f"  {name:<40} {phase['rows']:>10,} rows {seconds:7.2f} s {rate}")

    def _part_made(self, started: float):
        """A callback that prints each part of the world as it is made, with the time so far."""
        return lambda part: self._say(f"    made {part} ({time.perf_counter() - started:.1f} s)")

    def _progress(self, verb: str):
        """A callback that prints at most about every fifth of the work."""
        printed = {"share": 0.0}

        def report(done: int, total: int) -> None:
            share = done / total if total else 1.0
            if done < total and share - printed["share"] < 0.2:
                return
            printed["share"] = share
            self._say(f"    {verb} {done:,} / {total:,} interactions")

        return report


def check_arguments(size: WorldSize, seed: int) -> None:
    """Refuse sizes that cannot make a consistent world, naming the option at fault."""
    for name in DEFAULTS:
        if getattr(size, name) < 0:
            raise CommandError(f"--{name} must be 0 or more, got {getattr(size, name)}")
    if seed < 0:
        raise CommandError(f"--seed must be 0 or more, got {seed}")
    if size.startups and not size.users:
        raise CommandError("--startups needs --users > 0: every startup has a founder")
    if size.positions and not size.startups:
        raise CommandError("--positions needs --startups > 0: every position belongs to a startup")
    if size.interactions and not size.users:
        raise CommandError("--interactions needs --users > 0: every interaction has a user")

