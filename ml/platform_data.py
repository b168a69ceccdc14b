"""Reads the platform's people, catalog and interactions into the engine's arrays.

Items are every position, startup, developer and investor, keyed ``"<item_type>:<pk>"``; users are
every person with a profile, keyed by user id. Each person and item becomes a plain dict record that
``ml.core.features`` turns into dense features and content terms, so training and serving encode
them the same way. A founder's record carries what their startups need (required skills, industries,
stages, open positions' skills): those are the tastes a founder looks for in developers and investors.
"""
from collections import defaultdict
from collections.abc import Iterable

import numpy as np
from django.db import connection, models

from ml.core import data as engine_data
from ml.core import features
from ml.core.data import Events, IdMap, InteractionData, interaction_matrices
from profiles.models import (
    TARGET_FIELDS,
    Developer,
    Founder,
    Interaction,
    InteractionKind,
    Investor,
    ItemType,
    Position,
    Role,
    Startup,
)
from recsys_site import db


def item_key(item_type: str, pk: int) -> str:
    return f"{item_type}:{pk}"


def parse_item_key(key: str) -> tuple[str, int]:
    item_type, pk = key.split(":", 1)
    return item_type, int(pk)


def _names_by_owner(*relations, owners: set[int] | None = None) -> list[dict[int, list[str]]]:
    """For each many-to-many relation to named rows (``Developer.skills``, ...), {owner pk: [names]},
    sorted; of ``owners`` only, when given. One query for all the relations."""
    if owners is not None and not owners:
        return [{} for _ in relations]
    if owners is None:
        return [_every_name_by_owner(relation) for relation in relations]
    sql, params = _names_sql(relations, owners)
    grouped: list[dict[int, list[str]]] = [defaultdict(list) for _ in relations]
    for number, owner, name in _read(sql, params, whole=False):
        grouped[number][owner].append(name)
    for names in grouped:
        for linked in names.values():
            linked.sort()
    return grouped


def _every_name_by_owner(relation) -> dict[int, list[str]]:
    """{owner pk: [names], sorted} of every link of the many-to-many ``relation``: the links as ids
    (``db.number_chunks``, a binary COPY on PostgreSQL), grouped and sorted by numpy, then named. The 1M
    world's 13M skill and industry links as Python tuples of (relation, owner, name) took most of reading
    its people and catalog."""
    owner, target = relation.field.m2m_column_name(), relation.field.m2m_reverse_name()
    sql = f"SELECT {db.as_bigint(owner)}, {db.as_bigint(target)} FROM {db.table(relation.through)}"
    parts = list(db.number_chunks(sql, "ii"))
    if not parts:
        return {}
    owners, targets = (np.concatenate(column) for column in zip(*parts, strict=True))
    named = dict(relation.field.related_model.objects.values_list("pk", "name"))
    names = sorted(set(named.values()))
    place = {name: n for n, name in enumerate(names)}
    # each target's name as its place among the sorted names: sorting by it sorts by name
    ranks = _row_lookup(list(named), [place[name] for name in named.values()])[targets]
    order = np.lexsort((ranks, owners))
    owners, ranks = owners[order], ranks[order]
    starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
    ordered = np.asarray(names, dtype=object)[ranks].tolist()
    stops = [*starts[1:].tolist(), len(owners)]
    return {owner: ordered[start:stop]
            for owner, start, stop in zip(owners[starts].tolist(), starts.tolist(), stops, strict=True)}


def _read(sql: str, params: list, whole: bool):
    """The rows of ``sql``: streamed when ``whole`` (a table's millions of links: fetched all at once they
    took gigabytes), else fetched at once (a request's few, one round trip). Unordered: PostgreSQL's sort of
    millions of names took longer than sorting each owner's few here."""
    return (row for chunk in db.chunks(sql, params) for row in chunk) if whole else db.rows(sql, params)


def _names_sql(relations, owners: set[int]) -> tuple[str, list]:
    """(SQL, params) selecting (relation, owner, name) of ``owners``' links: the position in ``relations`` of
    each link, its owner's pk and the linked row's name. Plain SQL (recsys_site.db), as serving reads a user's
    own."""
    parts, params = [], []
    for number, relation in enumerate(relations):
        owner, target = relation.field.m2m_column_name(), relation.field.m2m_reverse_name()
        sql = (f"SELECT {number} AS relation, t.{owner} AS owner, n.name AS name FROM {db.table(relation.through)} t "
               f"JOIN {db.table(relation.field.related_model)} n ON n.id = t.{target}")
        condition, values = db.is_in(f"t.{owner}", owners)
        parts.append(f"{sql} WHERE {condition}")
        params += values
    return " UNION ALL ".join(parts), params


def _profiles(model, names: list[str], relations, owners: set[int] | None) -> dict[int, tuple[list, list[list[str]]]]:
    """{user id: ([the fields ``names``, as the ORM would give them], [the names linked by each of the
    many-to-many ``relations``, sorted])} for every profile of ``model``, or of ``owners`` only.

    One query, plain SQL (recsys_site.db): serving reads one user's profile on every request, and every
    statement costs a round trip and PostgreSQL's time as well as ours.
    """
    if owners is not None and not owners:
        return {}
    fields = [model._meta.get_field(name) for name in names]
    converters = [getattr(field, "from_db_value", None) for field in fields]
    if owners is None:  # every profile: its fields, and its links apart (a join repeats the fields per link)
        linked_names = [_every_name_by_owner(relation) for relation in relations]
        sql = f"SELECT user_id, {', '.join(field.column for field in fields)} FROM {db.table(model)}"
        return {pk: (_converted(converters, values), [found.get(pk, []) for found in linked_names])
                for pk, *values in _read(sql, [], whole=True)}
    linked, params = _names_sql(relations, owners)
    sql = (f"SELECT p.user_id, {', '.join(f'p.{field.column}' for field in fields)}, x.relation, x.name "
           f"FROM {db.table(model)} p LEFT JOIN ({linked}) x ON x.owner = p.user_id")
    condition, values = db.is_in("p.user_id", owners)
    sql += f" WHERE {condition}"
    params += values
    profiles: dict[int, tuple[list, list[list[str]]]] = {}
    for pk, *values, relation, name in _read(sql, params, whole=False):
        if pk not in profiles:
            profiles[pk] = (_converted(converters, values), [[] for _ in relations])
        if relation is not None:
            profiles[pk][1][relation].append(name)
    for _, by_relation in profiles.values():
        for found in by_relation:
            found.sort()
    return profiles


def _converted(converters: list, values: list) -> list:
    """A row's ``values`` as the ORM would give them (each field's ``from_db_value``, where it has one)."""
    return [value if convert is None else convert(value, None, connection)
            for convert, value in zip(converters, values, strict=True)]


def _remote_mode(remote: bool) -> str:
    return "remote" if remote else "onsite"


def user_records(user_ids: Iterable[int] | None = None, role: str | None = None) -> dict[int, dict]:
    """{user id: record} for every person with a profile, or only those in ``user_ids`` (and ``role``).

    Reads are filtered to the asked-for users, so serving one request reads a handful of rows.
    """
    only = None if user_ids is None else set(user_ids)
    readers = {"developer": _developer_records, "founder": _founder_records, "investor": _investor_records}
    records: dict[int, dict] = {}
    for name, read in readers.items():
        if role in (None, name):
            records.update(read(only))
    return records


def _filtered(queryset, only: set[int] | None):
    return queryset if only is None else queryset.filter(pk__in=only)


def _developer_records(only) -> dict[int, dict]:
    profiles = _profiles(Developer, ["headline", "years_experience", "remote_preference", "desired_salary"],
                         [Developer.skills, Developer.preferred_industries], only)
    return {
        pk: {"role": "developer", "headline": headline, "years_experience": years, "skills": skills,
             "industries": industries, "salary_min": salary, "salary_max": salary,
             "remote_preference": None if remote == "any" else remote}
        for pk, ((headline, years, remote, salary), (skills, industries)) in profiles.items()
    }


def _founder_records(only) -> dict[int, dict]:
    links = Startup.founders.through.objects.all()
    if only is not None:
        links = links.filter(founder_id__in=only)
    startups_of: dict[int, list[int]] = defaultdict(list)
    for founder, startup in links.values_list("founder_id", "startup_id"):
        startups_of[founder].append(startup)
    theirs = None if only is None else {s for startups in startups_of.values() for s in startups}
    startup_skills, = _names_by_owner(Startup.required_skills, owners=theirs)
    startup_info = {pk: (industry, stage, round_size if raising else None) for pk, industry, stage, raising, round_size
                    in _filtered(Startup.objects, theirs).values_list("pk", "industry__name", "stage", "raising",
                                                                      "round_size")}
    open_skills = Position.required_skills.through.objects.filter(position__status=Position.Status.OPEN)
    if theirs is not None:
        open_skills = open_skills.filter(position__startup_id__in=theirs)
    position_skills: dict[int, set[str]] = defaultdict(set)
    for startup, skill in open_skills.values_list("position__startup_id", "skill__name"):
        position_skills[startup].add(skill)
    records = {}
    for pk, ((years,), (own_skills,)) in _profiles(Founder, ["years_experience"], [Founder.skills], only).items():
        startups = startups_of.get(pk, [])
        needed = {s for st in startups for s in [*startup_skills.get(st, []), *position_skills.get(st, ())]}
        records[pk] = {
            "role": "founder", "years_experience": years,
            "skills": sorted(needed | set(own_skills)),
            "industries": sorted({startup_info[st][0] for st in startups}),
            "preferred_stages": sorted({startup_info[st][1] for st in startups}),
            **_tickets_wanted([startup_info[st][2] for st in startups]),
        }
    return records


def _tickets_wanted(rounds: list[int | None]) -> dict[str, int]:
    """The checks a founder's raising ``rounds`` (USD; None: not raising or not said) take, as an investor's
    check_size_min/max: 5-25% of a round, as ``ml.core.features`` reads a startup's funding_goal, so the two
    sides land on the same ``check:`` terms. Empty when none is raising."""
    sizes = [size for size in rounds if size]
    return {"check_size_min": round(0.05 * min(sizes)), "check_size_max": round(0.25 * max(sizes))} if sizes else {}


def _investor_records(only) -> dict[int, dict]:
    profiles = _profiles(Investor, ["firm", "preferred_stages", "check_size_min", "check_size_max"],
                         [Investor.preferred_industries], only)
    return {
        pk: {"role": "investor", "headline": firm, "industries": industries, "preferred_stages": stages or [],
             "check_size_min": low, "check_size_max": high}
        for pk, ((firm, stages, low, high), (industries,)) in profiles.items()
    }


def item_records(people: dict[int, dict]) -> dict[str, dict]:
    """{item key: record} for the whole catalog: positions, startups, and the ``people`` who are
    developers or investors (the items founders are recommended)."""
    startups = _startup_records(Startup.objects.all(), whole=True)
    records = {item_key(ItemType.STARTUP, pk): record for pk, record in startups.items()}
    records |= _position_records(Position.objects.all(), startups, whole=True)
    return records | _people_as_items(people)


# The kinds that say yes to the other side of a two-sided match: an application, a contact, an investment
# interest, an acceptance of the other side's contact or application.
YES_KINDS = ("apply", "contact", "invest_interest", "accept")


def catalog_version() -> tuple:
    """((newest id, latest edit) of positions, the same of startups, the newest answer's id: dismissals and
    YES_KINDS): the first two change whenever a position or startup is created or edited; the last with an
    application (whose applicants count changes with it, in one transaction), a dismissal, a contact or an
    acceptance, which serving adds to what it holds without loading the models (recommendations.model_store).
    Read at every registry check (MODEL_REGISTRY_CHECK_SECONDS) by every web process, never per request, so
    each part is read from an index's end. Counting and summing the rows instead scanned the million-item
    catalog, in parallel: 0.39 s of CPU at each check, every 2 s in the master and in each worker; without
    it, under 4 clients' load, PostgreSQL's CPU per request fell from 10.2 to 3.0 ms and the p99 from 252 to
    118 ms (README, "Serving the million world"). A deleted position or startup changes nothing here: like a
    closed one, it is dropped from the answers from then on (the titles read, recommendations.services)
    until the next load."""
    positions = Position.objects.aggregate(newest=models.Max("pk"), edited=models.Max("updated_at"))
    startups = Startup.objects.aggregate(newest=models.Max("pk"), edited=models.Max("updated_at"))
    answers = Interaction.objects.filter(kind__in=[*engine_data.NEGATIVE_KINDS, *YES_KINDS]).aggregate(
        latest=models.Max("pk"))
    return ((positions["newest"], positions["edited"]), (startups["newest"], startups["edited"]), answers["latest"])


def catalog_records_changed_since(moment) -> dict[str, dict]:
    """{item key: record} of the positions and startups created or edited at or after ``moment``, encoded
    as :func:`item_records` encodes them: what serving scores by content before the next training."""
    positions = Position.objects.filter(updated_at__gte=moment)
    changed_startups = set(Startup.objects.filter(updated_at__gte=moment).values_list("pk", flat=True))
    startups = _startup_records(Startup.objects.filter(
        pk__in=changed_startups | set(positions.values_list("startup_id", flat=True))))
    records = {item_key(ItemType.STARTUP, pk): startups[pk] for pk in changed_startups}
    return records | _position_records(positions, startups)


def _startup_records(startups, whole: bool = False) -> dict[int, dict]:
    """{startup pk: record} of the ``startups`` queryset (``whole``: all of them, read without a filter)."""
    pks = None if whole else set(startups.values_list("pk", flat=True))
    (startup_skills,) = _names_by_owner(Startup.required_skills, owners=pks)
    open_counts: dict[int, int] = defaultdict(int)
    open_positions = Position.objects.filter(status=Position.Status.OPEN)
    for startup in (open_positions if pks is None else open_positions.filter(startup_id__in=pks)).values_list(
            "startup_id", flat=True):
        open_counts[startup] += 1
    records = {}
    for pk, name, industry, stage, team, funding, remote, description, raising, round_size in startups.values_list(
            "pk", "name", "industry__name", "stage", "team_size", "funding_raised", "remote_friendly",
            "description", "raising", "round_size"):
        records[pk] = {"item_type": "startup", "title": name, "industries": [industry], "stage": stage,
                       "team_size": team, "funding_raised": funding, "remote": _remote_mode(remote),
                       "description": description, "required_skills": startup_skills.get(pk, []),
                       "open_positions": open_counts[pk], "raising": raising, "round_size": round_size,
                       # the round being raised: what ml.core.features turns into the checks it takes
                       "funding_goal": round_size if raising else None}
    return records


def _position_records(positions, startups: dict[int, dict], whole: bool = False) -> dict[str, dict]:
    """{item key: record} of the ``positions`` queryset; ``startups``: their startups' records."""
    owners = None if whole else set(positions.values_list("pk", flat=True))
    (position_skills,) = _names_by_owner(Position.required_skills, owners=owners)
    records = {}
    for pk, startup, title, description, low, high, remote, years, openings, applicants in positions.values_list(
            "pk", "startup_id", "title", "description", "salary_min", "salary_max", "remote",
            "years_experience_required", "openings", "applicants"):
        parent = startups[startup]
        records[item_key(ItemType.POSITION, pk)] = {
            "item_type": "position", "title": title, "description": description,
            "required_skills": position_skills.get(pk, []), "salary_min": low, "salary_max": high,
            "remote": _remote_mode(remote), "years_experience": years, "industries": parent["industries"],
            "stage": parent["stage"], "team_size": parent["team_size"], "funding_raised": parent["funding_raised"],
            "openings": openings, "applicants": applicants,
        }
    return records


def _people_as_items(people: dict[int, dict]) -> dict[str, dict]:
    records = {}
    for pk, person in people.items():
        if person["role"] == "developer":
            records[item_key(ItemType.DEVELOPER, pk)] = {
                "item_type": "developer", "title": person["headline"], "required_skills": person["skills"],
                "industries": person["industries"], "salary_min": person["salary_min"],
                "salary_max": person["salary_max"], "remote": person["remote_preference"],
                "years_experience": person["years_experience"]}
        elif person["role"] == "investor":
            records[item_key(ItemType.INVESTOR, pk)] = {
                "item_type": "investor", "title": person["headline"], "industries": person["industries"],
                "preferred_stages": person["preferred_stages"],
                "check_size_min": person["check_size_min"], "check_size_max": person["check_size_max"]}
    return records


def interaction_events(user_index: dict[str, int], item_index: dict[str, int],
                       user_id: int) -> list[tuple[int, int, str]]:
    """(user row, item row, kind) of every interaction of ``user_id`` whose user and item are known: one
    user's few rows, on every request for recommendations, in plain SQL (recsys_site.db)."""
    columns = [f"{field}_id" for field in TARGET_FIELDS.values()]
    types = list(TARGET_FIELDS)
    rows = []
    for user, kind, *targets in db.rows(
            f"SELECT user_id, kind, {', '.join(columns)} FROM {db.table(Interaction)} WHERE user_id = %s", [user_id]):
        position = next(n for n, target in enumerate(targets) if target is not None)
        item = item_index.get(item_key(types[position], targets[position]))
        row = user_index.get(str(user))
        if item is not None and row is not None:
            rows.append((row, item, kind))
    return rows


EVENTS_CHUNK = 200_000  # rows fetched and turned into arrays at a time where there is no binary COPY (SQLite)


def all_events(user_ids: IdMap, item_ids: IdMap) -> Events:
    """Every interaction whose user and item are known, each user's in the order they happened, as arrays.

    The table is read as it lies (a binary COPY on PostgreSQL: ``db.number_chunks``), a chunk at a time, and
    put in order here (numpy's sort of ten million keys takes 3 s where PostgreSQL's ORDER BY took 43 s); each
    chunk's ids become rows through lookup arrays, so no Python object per event outlives its chunk."""
    types, kinds = list(TARGET_FIELDS), tuple(InteractionKind.values)
    user_row = _row_lookup([int(user) for user in user_ids.ids])
    keys = [parse_item_key(key) for key in item_ids.ids]
    item_row = [_row_lookup([pk for kind, pk in keys if kind == item_type],
                            [row for row, (kind, _) in enumerate(keys) if kind == item_type]) for item_type in types]
    columns = [f"{field}_id" for field in TARGET_FIELDS.values()]
    target_type = " ".join(f"WHEN {column} IS NOT NULL THEN {n}" for n, column in enumerate(columns))
    kind_code = " ".join(f"WHEN '{kind}' THEN {n}" for n, kind in enumerate(kinds))
    # never NULL (db.number_chunks): an event without a target or of an unknown kind has -1, and is dropped
    selected = ["user_id", f"COALESCE({', '.join(columns)}, -1)", f"CASE {target_type} ELSE -1 END",
                f"CASE kind {kind_code} ELSE -1 END"]
    sql = (f"SELECT {', '.join(db.as_bigint(column) for column in selected)}, {db.epoch_seconds('created_at')}, "
           f"{db.as_bigint('id')} FROM {db.table(Interaction)}")
    parts = []
    for users, targets, type_of, codes, moments, ids in db.number_chunks(sql, "iiiifi", size=EVENTS_CHUNK):
        items = np.full(len(users), -1, dtype=np.int64)
        for n, lookup in enumerate(item_row):
            here = type_of == n
            items[here] = _looked_up(lookup, targets[here])
        rows = _looked_up(user_row, users)
        known = (rows >= 0) & (items >= 0) & (codes >= 0)
        parts.append((rows[known], items[known], codes[known], moments[known], ids[known]))
    if not parts:
        return Events.of([])
    rows, items, codes, moments, ids = (np.concatenate(column) for column in zip(*parts, strict=True))
    order = np.lexsort((ids, moments, rows))  # by user, then time, then id (events of the same moment)
    return Events(rows[order].astype(np.int32), items[order].astype(np.int32), codes[order].astype(np.int8), kinds)


def _row_lookup(ids: list[int], rows: list[int] | None = None) -> np.ndarray:
    """An array whose entry at each of ``ids`` is its row (the id's place in ``ids``, or ``rows``'), -1 elsewhere."""
    lookup = np.full(max(ids, default=-1) + 1, -1, dtype=np.int64)
    lookup[np.asarray(ids, dtype=np.int64)] = np.arange(len(ids)) if rows is None else rows
    return lookup


def _looked_up(lookup: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The rows of ``ids`` in ``lookup`` (:func:`_row_lookup`); -1 for ids it does not hold."""
    inside = (ids >= 0) & (ids < len(lookup))
    rows = np.full(len(ids), -1, dtype=np.int64)
    rows[inside] = lookup[ids[inside]]
    return rows


def training_rows() -> tuple[InteractionData, Events, dict[int, dict]]:
    """The whole platform as the engine's input, read once: (data, every event (user row, item row, kind)
    with each user's in the order they happened, which a time-based holdout splits and ``data``'s matrices
    sum, people's records by user id)."""
    users = user_records()
    items = item_records(users)
    user_ids, item_ids = IdMap([str(user) for user in sorted(users)]), IdMap(list(items))
    user_list = [users[int(u)] for u in user_ids.ids]
    item_list = [items[i] for i in item_ids.ids]
    events = all_events(user_ids, item_ids)
    matrix, negatives = interaction_matrices(events, len(user_ids), len(item_ids))
    user_content, item_content, vocabulary = features.platform_content(user_list, item_list)
    data = InteractionData(
        user_ids=user_ids, item_ids=item_ids, matrix=matrix, negatives=negatives,
        user_features=features.platform_user_features(user_list).astype(np.float32),
        item_features=features.platform_item_features(item_list).astype(np.float32),
        user_content=user_content, item_content=item_content, content_vocab=list(vocabulary.terms),
    )
    return data, events, users


def item_startups() -> dict[str, int]:
    """{item key: startup pk} of every startup (itself) and open position (its startup): what a request's
    ``max_per_startup`` counts, and which catalog items may be served now (a closed or deleted one is not
    in it). Read when models load (a position closed changes the catalog's version), never per request."""
    startups = {item_key(ItemType.STARTUP, pk): pk for pk in Startup.objects.values_list("pk", flat=True)}
    return startups | {item_key(ItemType.POSITION, pk): startup
                       for pk, startup in Position.objects.filter(status=Position.Status.OPEN).values_list(
                           "pk", "startup_id")}


def item_market(positions: Iterable[int] | None = None) -> dict[str, dict]:
    """{item key: {"raising", "round_size"}} of every startup and {item key: {"applicants", "openings"}} of
    every position, as :func:`item_records` holds them: what investors' candidates are filtered and crowded positions
    lowered by (``ml.serving_set.ItemMarket``). Two small reads of columns, no join; read when models load,
    never per request. Given ``positions`` (pks), only theirs: what an application since changed."""
    rows = Position.objects.all() if positions is None else Position.objects.filter(pk__in=list(positions))
    crowds = {item_key(ItemType.POSITION, pk): {"applicants": applicants, "openings": openings}
              for pk, applicants, openings in rows.values_list("pk", "applicants", "openings")}
    if positions is not None:
        return crowds
    startups = {item_key(ItemType.STARTUP, pk): {"raising": raising, "round_size": size}
                for pk, raising, size in Startup.objects.values_list("pk", "raising", "round_size")}
    return startups | crowds


def item_founders(startups: Iterable[int] | None = None) -> dict[str, tuple[int, ...]]:
    """{item key: user ids of its founders} of every startup and position (its startup's founders): whose
    side a dismissal of a catalog item rebuffs, and whose positions a founder's dismissal of a developer
    closes to them (``ml.serving_set.rebuffed_by``). Two small reads; read when models load, never per request.
    Given ``startups`` (pks), only those startups' and their positions' (``startups_answered``)."""
    links = Startup.founders.through.objects.order_by("startup_id", "founder_id")
    positions = Position.objects.order_by()
    if startups is not None:
        startups = list(startups)
        links, positions = links.filter(startup_id__in=startups), positions.filter(startup_id__in=startups)
    founders: dict[int, list[int]] = defaultdict(list)
    for startup, founder in links.values_list("startup_id", "founder_id"):
        founders[startup].append(founder)
    items = {item_key(ItemType.STARTUP, pk): tuple(ids) for pk, ids in founders.items()}
    return items | {item_key(ItemType.POSITION, pk): tuple(founders[startup])
                    for pk, startup in positions.values_list("pk", "startup_id") if startup in founders}


def startups_answered(answers: Iterable[tuple[int, str]]) -> set[int]:
    """The startups (pks) whose founders ``answers`` ((user id, item key) events) concern: those of the startups
    and positions answered, and those the answering users found (a founder's answer to a developer or an
    investor speaks for their startups): all that :func:`item_founders` needs for ``rebuffed_by`` and
    ``answered_by`` of these answers alone."""
    answers = list(answers)
    keys = [parse_item_key(key) for _, key in answers]
    startups = {pk for item_type, pk in keys if item_type == ItemType.STARTUP}
    startups.update(Position.objects.filter(pk__in=[pk for item_type, pk in keys if item_type == ItemType.POSITION])
                    .values_list("startup_id", flat=True))
    startups.update(Startup.founders.through.objects.filter(founder_id__in={user for user, _ in answers})
                    .values_list("startup_id", flat=True))
    return startups


def dismissals(after: int | None = None) -> list[tuple[int, str]]:
    """(user id, item key) of every dismissal on the platform: who said no to what, which the other side's
    candidates are narrowed by (``ml.serving_set.rebuffed_by``). One read of the dismissals, at load; given
    ``after`` (an interaction id), only those since."""
    return _events_of(engine_data.NEGATIVE_KINDS, after)


def commitments(after: int | None = None) -> list[tuple[int, str]]:
    """(user id, item key) of every event of YES_KINDS: who said yes to what, which lifts the other side's
    interest in serving and finds mutual matches in the served evaluation (``ml.serving_set.answered_by``).
    One read of those kinds, at load; given ``after`` (an interaction id), only those since."""
    return _events_of(YES_KINDS, after)


def _events_of(kinds, after: int | None = None) -> list[tuple[int, str]]:
    """(user id, item key) of every interaction of ``kinds`` (with an id above ``after``, when given)."""
    columns = [f"{field}_id" for field in TARGET_FIELDS.values()]
    types = list(TARGET_FIELDS)
    rows = Interaction.objects.filter(kind__in=list(kinds))
    if after is not None:
        rows = rows.filter(pk__gt=after)
    events = []
    for user, *targets in rows.values_list("user_id", *columns).order_by():
        position = next(n for n, target in enumerate(targets) if target is not None)
        events.append((user, item_key(types[position], targets[position])))
    return events


def item_popularity() -> dict[str, int]:
    """{item key: how many users made a positive interaction (any kind but a dismissal) with it}: the
    fallback ranking when nothing personal can be scored. One aggregate per item type."""
    counts: dict[str, int] = {}
    positives = Interaction.objects.exclude(kind__in=list(engine_data.NEGATIVE_KINDS))
    for item_type, field in TARGET_FIELDS.items():
        per_item = (positives.filter(**{f"{field}__isnull": False}).values_list(f"{field}_id")
                    .annotate(users=models.Count("user_id", distinct=True)))
        counts.update((item_key(item_type, pk), users) for pk, users in per_item)
    return counts


# ---------------------------------------------------------------- what is served, and in what order events came

# Who is recommended what (docs/api.md): founders look for people who fit their startups. Serving and the
# served evaluation (ml.evaluation) both read it.
ROLE_ITEM_TYPES: dict[str, tuple[str, ...]] = {
    Role.DEVELOPER: (ItemType.POSITION, ItemType.STARTUP),
    Role.INVESTOR: (ItemType.STARTUP,),
    Role.FOUNDER: (ItemType.DEVELOPER, ItemType.INVESTOR),
}


def servable_items(item_ids: IdMap) -> np.ndarray:
    """(len(item_ids),) bool: whether each item may be recommended now. Every item that exists may, but a
    position only while open, as recommendations.selectors.recommendable_titles decides."""
    closed = {item_key(ItemType.POSITION, pk) for pk in
              Position.objects.exclude(status=Position.Status.OPEN).values_list("pk", flat=True)}
    return np.fromiter((key not in closed for key in item_ids.ids), dtype=bool, count=len(item_ids))
