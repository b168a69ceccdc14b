"""What the API serves, measured: NDCG@10 and recall@10 of POST /api/v1/recommendations on a seeded demo
world, beside popularity, implicit ALS and the world's hidden tastes (the oracle), on the same rows and
candidates.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/servedquality .venv/bin/python bench/served_quality.py
    ... bench/served_quality.py --reuse            # evaluate again on the world and models already built
    ... bench/served_quality.py --users 600 --positions 300 --startups 100 --interactions 12000   # smaller

Without ``--reuse`` it DROPS and re-creates the database in DATABASE_URL (PostgreSQL is recommended;
the default is a SQLite file under var/), seeds a demo world with ``manage.py seed_demo``, holds out
each user's latest 20% of events (users with 2 or more events; at least one each) by deleting them,
keeping them in a JSON file under var/, and trains every algorithm with ``manage.py train_models``, as
an operator would (TWO_TOWER_MAX_EPOCHS is passed on when set). Then, for every user with held-out
events:

- served: the API's answer through DRF's test client, as a staff user (the real view, serializer and
  service; ``exclude_seen`` at its default). Users it refuses are counted and left out of every row.
- popularity: items by how many distinct users made a non-dismiss event on them in the remaining rows.
- ALS: ``implicit``'s AlternatingLeastSquares on the remaining rows (binary user x item matrix of
  non-dismiss events), 15 iterations, the best of a small grid (factors, regularization, alpha) chosen
  by NDCG@10 on the held-out events themselves: generous to the baseline.
- taste: the world's hidden match of the user with each candidate (``WorldOracle.scores``,
  profiles/demo/oracle.py): what suits the user, ignoring what they are likely to be shown.
- oracle: the match plus each item's hidden exposure (``WorldOracle.propensities``): how likely the
  world's events are to pick each item, the ranking its held-out events follow; no recommender should
  expect to reach it.

Candidates are what the API may serve: the item types of the user's role (developer: positions and
startups; investor: startups; founder: developers and investors), positions only while open, minus
every item the user has an event on in the remaining rows (dismissed ones too). Baselines and the oracle
break ties by popularity. Relevant items are the distinct held-out items of non-dismiss events that are
among the user's candidates (held-out events on items already seen, or on positions no longer open,
could be found by no ranking: they are counted and dropped); a second table counts only engaged kinds
(not view, not dismiss). Users without relevant items are left out of a table. Segments are by the
user's remaining events: cold none, light 1-4, heavy 5+ (with 2+ events to hold out from, no user is
cold unless ``--min-events 1``).

Prints progress, the ALS grid and the tables; ``--json PATH`` writes the numbers.
"""
import argparse
import json
import os
import shutil
import sys
import time
import warnings
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsys_site.settings")
os.environ.setdefault("DATABASE_URL", f"sqlite:///{ROOT}/var/served_quality.sqlite3")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")  # the test client speaks plain HTTP
os.environ.setdefault("ALLOWED_HOSTS", "testserver")
os.environ.setdefault("MODEL_DIR", str(ROOT / "var" / "served-quality-models"))
os.environ.setdefault("LOG_LEVEL", "WARNING")
# WhiteNoise warns that collectstatic never ran; the API answers no static files.
warnings.filterwarnings("ignore", message="No directory at")

from seed_demo import manage, recreate_database  # noqa: E402  (bench/seed_demo.py, beside this file)

WORLD = {"users": 3_000, "positions": 1_500, "startups": 500, "interactions": 60_000}
HOLDOUT_SHARE = 0.2
K = 10
ALS_GRID = [(factors, regularization, alpha) for factors in (64, 128) for regularization in (1.0, 10.0, 30.0)
            for alpha in (1.0, 5.0)]
ALS_ITERATIONS = 15
ROLE_ITEM_TYPES = {"developer": ("position", "startup"), "investor": ("startup",),
                   "founder": ("developer", "investor")}  # as recommendations/services.py serves them
NOT_ENGAGED = {"view", "dismiss"}
TARGET_COLUMNS = ("position_id", "startup_id", "developer_id", "investor_id")  # an interaction's one target
TARGET_TYPES = ("position", "startup", "developer", "investor")
METHODS = ("served", "popularity", "als", "taste", "oracle")
GROUPS = ("all", "developer", "investor", "founder", "cold", "light", "heavy")


def say(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------- building the world


def build(args, holdout_path: Path) -> None:
    """A fresh database with the seeded world, the held-out events removed (and saved), models trained."""
    url = os.environ["DATABASE_URL"]
    env = dict(os.environ)
    fresh_database(url)
    shutil.rmtree(os.environ["MODEL_DIR"], ignore_errors=True)  # versions of an earlier world must not load
    say(f"migrate: {manage(env, 'migrate', '--no-input', '-v0'):.1f} s")
    sizes = [f"--{name}={getattr(args, name)}" for name in WORLD] + [f"--seed={args.seed}"]
    say(f"seed_demo {' '.join(sizes)}")
    say(f"seed_demo: {manage(env, 'seed_demo', *sizes):.1f} s")
    started = time.perf_counter()
    held = hold_out(args.min_events)
    holdout_path.parent.mkdir(parents=True, exist_ok=True)
    holdout_path.write_text(json.dumps({"seed": args.seed, "size": {name: getattr(args, name) for name in WORLD},
                                        "min_events": args.min_events, "events": held}))
    say(f"held out {len(held):,} events of {len({e['user_id'] for e in held}):,} users "
        f"({time.perf_counter() - started:.1f} s), kept in {holdout_path}")
    epochs = os.environ.get("TWO_TOWER_MAX_EPOCHS", "0 (the engine's default)")
    say(f"train_models (TWO_TOWER_MAX_EPOCHS={epochs}) ...")
    say(f"train_models: {manage(env, 'train_models'):.1f} s")


def fresh_database(url: str) -> None:
    if urlparse(url).scheme == "sqlite":
        path = Path(urlparse(url).path[1:])
        path.unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
    else:
        recreate_database(url)


def hold_out(min_events: int) -> list[dict]:
    """Delete each user's latest HOLDOUT_SHARE of events (at least one, of users with ``min_events`` or
    more; ties in time broken by id) and return them as plain dicts."""
    from profiles.models import Interaction

    by_user = defaultdict(list)
    for row in Interaction.objects.order_by("user_id", "created_at", "id").values_list(
            "id", "user_id", "kind", "created_at", *TARGET_COLUMNS):
        by_user[row[1]].append(row)
    held = []
    for rows in by_user.values():
        if len(rows) >= min_events:
            held += rows[len(rows) - max(1, int(HOLDOUT_SHARE * len(rows))):]
    ids = [row[0] for row in held]
    for start in range(0, len(ids), 900):  # under SQLite's limit on bound variables
        Interaction.objects.filter(pk__in=ids[start:start + 900]).delete()
    return [{"user_id": user, "kind": kind, "created_at": created.isoformat(), "item": row_item_key(targets)}
            for _, user, kind, created, *targets in held]


def row_item_key(targets) -> str:
    """The item key ("position:12") of an interaction's one non-null target column."""
    n = next(n for n, target in enumerate(targets) if target is not None)
    return f"{TARGET_TYPES[n]}:{targets[n]}"


# ---------------------------------------------------------------- what the database holds now


class Platform:
    """The remaining rows as arrays: items, users' roles, seen items, positive events and popularity."""

    def __init__(self) -> None:
        from profiles.models import Developer, Founder, Interaction, Investor, Position, Startup

        catalog = {
            "position": list(Position.objects.order_by("pk").values_list("pk", "status")),
            "startup": [(pk, "open") for pk in Startup.objects.order_by("pk").values_list("pk", flat=True)],
            "developer": [(pk, "open") for pk in Developer.objects.order_by("pk").values_list("pk", flat=True)],
            "investor": [(pk, "open") for pk in Investor.objects.order_by("pk").values_list("pk", flat=True)],
        }
        self.keys = [f"{item_type}:{pk}" for item_type, rows in catalog.items() for pk, _ in rows]
        self.index = {key: n for n, key in enumerate(self.keys)}
        # Only open positions are served (recommendations.selectors.recommendable_titles); the rest may be.
        servable = np.array([status == Position.Status.OPEN for rows in catalog.values() for _, status in rows])
        types = np.array([key.split(":")[0] for key in self.keys])
        self.by_role = {role: np.flatnonzero(np.isin(types, wanted) & servable)
                        for role, wanted in ROLE_ITEM_TYPES.items()}
        self.roles = {}
        for model, role in ((Developer, "developer"), (Founder, "founder"), (Investor, "investor")):
            self.roles.update(dict.fromkeys(model.objects.values_list("pk", flat=True), role))
        self.user_rows = {user: n for n, user in enumerate(sorted(self.roles))}
        self.seen: dict[int, set[int]] = defaultdict(set)
        self.events = Counter()
        cells = set()
        for user, kind, *targets in Interaction.objects.values_list("user_id", "kind", *TARGET_COLUMNS).iterator(
                chunk_size=20_000):
            item = self.index[row_item_key(targets)]
            self.seen[user].add(item)
            self.events[user] += 1
            if kind != "dismiss" and user in self.user_rows:
                cells.add((self.user_rows[user], item))
        rows, columns = (np.array(column, dtype=np.int64) for column in zip(*cells, strict=True))
        # (users, items) float32: 1 where the user made any non-dismiss event on the item.
        self.positives = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, columns)),
                                       shape=(len(self.user_rows), len(self.keys)))
        self.popularity = np.asarray(self.positives.sum(axis=0)).ravel()
        self._candidates: dict[int, np.ndarray] = {}

    def candidates(self, user: int) -> np.ndarray:
        """Item rows the API may serve this user: their role's types, open positions, nothing seen."""
        if user not in self._candidates:
            items = self.by_role[self.roles[user]]
            self._candidates[user] = items[~np.isin(items, list(self.seen.get(user, ())))]
        return self._candidates[user]

    def segment(self, user: int) -> str:
        count = self.events.get(user, 0)
        return "cold" if count == 0 else "light" if count < 5 else "heavy"


def relevant_items(platform: Platform, held: list[dict]) -> tuple[dict, dict, Counter]:
    """Per user, the held-out items a ranking could find: {user: set of item rows} for non-dismiss
    events and for engaged ones, and how many held-out items were dropped, by why."""
    relevant, engaged, dropped = defaultdict(set), defaultdict(set), Counter()
    for event in held:
        if event["kind"] == "dismiss":
            continue
        user, item = event["user_id"], platform.index.get(event["item"])
        if item in platform.seen.get(user, ()):
            dropped["already seen in the remaining rows"] += 1
        elif item not in platform.candidates(user):
            dropped["not servable (position not open, or deleted)"] += 1
        else:
            relevant[user].add(item)
            if event["kind"] not in NOT_ENGAGED:
                engaged[user].add(item)
    return dict(relevant), dict(engaged), dropped


# ---------------------------------------------------------------- the four rankings


def top_k(candidates: np.ndarray, scores: np.ndarray, popularity: np.ndarray) -> list[int]:
    """The K candidates with the best scores; ties go to the more popular, then to catalog order."""
    order = np.lexsort((candidates, -popularity[candidates], -scores))[:K]
    return candidates[order].tolist()


def served_lists(platform: Platform, users: list[int]) -> tuple[dict[int, list[int]], Counter, Counter]:
    """What POST /api/v1/recommendations answers each user, as item rows; refusals by status code, and
    the answers' fallback paths."""
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    from recommendations.model_store import serving_models

    models = serving_models()
    say(f"serving versions: {models.serving_versions()}; unavailable: {models.unavailable or 'none'}")
    staff, _ = get_user_model().objects.get_or_create(username="served-quality-staff", defaults={"is_staff": True})
    client = APIClient()
    client.force_authenticate(staff)
    lists, refused, paths = {}, Counter(), Counter()
    started = time.perf_counter()
    for n, user in enumerate(users, start=1):
        response = client.post("/api/v1/recommendations", {"user_id": user, "user_type": platform.roles[user],
                                                           "limit": K}, format="json")
        if response.status_code != 200:
            refused[f"{response.status_code}: {str(response.json())[:120]}"] += 1
        else:
            body = response.json()
            paths[body["fallback"]] += 1
            lists[user] = [platform.index.get(f"{r['item_type']}:{r['item_id']}", -1) for r in body["results"]]
        if n % max(1, len(users) // 10) == 0 or n == len(users):
            say(f"  served {n:,} / {len(users):,} users ({(time.perf_counter() - started) / n * 1000:.0f} ms each)")
    return lists, refused, paths


def popularity_lists(platform: Platform, users: list[int]) -> dict[int, list[int]]:
    lists = {}
    for user in users:
        candidates = platform.candidates(user)
        lists[user] = top_k(candidates, platform.popularity[candidates], platform.popularity)
    return lists


def als_lists(platform: Platform, users: list[int], factors: int, regularization: float, alpha: float,
              seed: int) -> dict[int, list[int]]:
    from implicit.als import AlternatingLeastSquares

    with threadpool_limits(1, "blas"):  # implicit's own threads do the work; BLAS threads would fight them
        model = AlternatingLeastSquares(factors=factors, regularization=regularization, alpha=alpha,
                                        iterations=ALS_ITERATIONS, random_state=seed, use_gpu=False)
        model.fit(platform.positives, show_progress=False)
    user_factors, item_factors = model.user_factors, model.item_factors  # (users, f), (items, f)
    lists = {}
    for user in users:
        candidates = platform.candidates(user)
        scores = item_factors[candidates] @ user_factors[platform.user_rows[user]]
        lists[user] = top_k(candidates, scores, platform.popularity)
    return lists


def oracle_lists(platform: Platform, users: list[int], seed: int, size: dict) -> dict[str, dict[int, list[int]]]:
    """{"taste": lists by the hidden match, "oracle": lists by the match and the items' exposure}."""
    from django.contrib.auth import get_user_model

    from profiles.demo.oracle import DEFAULT_END, WorldIds, WorldOracle
    from profiles.demo.store import DEMO_EMAIL_DOMAIN
    from profiles.demo.world import WorldSize, make_world
    from profiles.models import Position, Startup

    world = make_world(seed, WorldSize(**size), DEFAULT_END)  # as seeded: seed_demo's default --end
    demo = get_user_model().objects.filter(email__endswith=f"@{DEMO_EMAIL_DOMAIN}")
    startups = dict(Startup.objects.filter(founders__user__in=demo.values("pk")).distinct().values_list("pk", "name"))
    positions = dict(Position.objects.filter(startup__in=list(startups)).values_list("pk", "title"))
    ids = WorldIds.from_rows(world, users=dict(demo.values_list("username", "pk")), startups=startups,
                             positions=positions)
    oracle = WorldOracle(world, ids)
    lists: dict[str, dict[int, list[int]]] = {"taste": {}, "oracle": {}}
    for user in users:
        candidates = platform.candidates(user)
        keys = [platform.keys[item] for item in candidates]
        lists["taste"][user] = top_k(candidates, oracle.scores(user, keys), platform.popularity)
        lists["oracle"][user] = top_k(candidates, oracle.propensities(user, keys), platform.popularity)
    return lists


# ---------------------------------------------------------------- measuring


def mean_metric(metric, lists: dict[int, list[int]], relevant: dict[int, set[int]], users: list[int]) -> float:
    values = [metric(lists[user], relevant[user], K) for user in users if user in relevant]
    return float(np.mean(values)) if values else float("nan")


def group_users(platform: Platform, users: list[int]) -> dict[str, list[int]]:
    groups = {name: [] for name in GROUPS}
    for user in users:
        for name in ("all", platform.roles[user], platform.segment(user)):
            groups[name].append(user)
    return groups


def table(lists: dict[str, dict], relevant: dict[int, set[int]], groups: dict[str, list[int]]) -> dict:
    from ml.core.metrics import ndcg_at_k, recall_at_k

    numbers = {}
    for group, users in groups.items():
        measured = [user for user in users if user in relevant]
        row: dict = {"users": len(measured)}
        for metric_name, metric in (("ndcg", ndcg_at_k), ("recall", recall_at_k)):
            if not measured:
                continue
            values = {method: mean_metric(metric, lists[method], relevant, measured) for method in METHODS}
            values["served_vs_best_baseline"] = ratio(values["served"], max(values["popularity"], values["als"]))
            values["served_vs_oracle"] = ratio(values["served"], values["oracle"])
            row[metric_name] = values
        numbers[group] = row
    return numbers


def ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


COLUMNS = {"served": "served", "popularity": "popular", "als": "ALS", "taste": "taste", "oracle": "oracle",
           "served_vs_best_baseline": "/base", "served_vs_oracle": "/orcl"}  # per metric, as printed


def print_table(title: str, numbers: dict) -> None:
    say(f"\n{title}")
    width = len(COLUMNS) * 9 - 1
    say(f"{'':<17} |" + "".join(f" {metric:^{width}} |" for metric in ("NDCG@10", "recall@10")))
    say(f"{'group':<10} {'users':>6} |" + (" " + " ".join(f"{label:>8}" for label in COLUMNS.values()) + " |") * 2)
    for group, row in numbers.items():
        line = f"{group:<10} {row['users']:>6} |"
        for metric in ("ndcg", "recall"):
            values = row.get(metric, {})
            line += " " + " ".join(f"{shown(values.get(name), 4 if name in METHODS else 2):>8}" for name in COLUMNS)
            line += " |"
        say(line)


def shown(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def evaluate(args, holdout: dict) -> dict:
    from ml.core.metrics import ndcg_at_k

    timings = {}
    started = time.perf_counter()
    platform = Platform()
    relevant, engaged, dropped = relevant_items(platform, holdout["events"])
    users = sorted({event["user_id"] for event in holdout["events"]} & set(platform.roles))
    say(f"{len(users):,} held-out users, {len(relevant):,} with relevant items "
        f"({sum(map(len, relevant.values())):,} items); dropped: {dict(dropped)}")
    timings["read"] = time.perf_counter() - started

    started = time.perf_counter()
    served, refused, paths = served_lists(platform, users)
    timings["served"] = time.perf_counter() - started
    outside = sum(int(np.isin(items, platform.candidates(user), invert=True).sum()) for user, items in served.items())
    short = sum(len(items) < K for items in served.values())
    say(f"refused: {dict(refused) or 'none'}; fallback paths: {dict(paths)}; served items outside the candidates: "
        f"{outside}; answers shorter than {K}: {short}")
    users = [user for user in users if user in served]  # every row compares the same users

    started = time.perf_counter()
    lists = {"served": served, "popularity": popularity_lists(platform, users)}
    grid = []
    for number, (factors, regularization, alpha) in enumerate(ALS_GRID, start=1):
        candidate = als_lists(platform, users, factors, regularization, alpha, args.seed)
        ndcg = mean_metric(ndcg_at_k, candidate, relevant, users)
        grid.append({"factors": factors, "regularization": regularization, "alpha": alpha, "ndcg": ndcg})
        say(f"  ALS {number:>2}/{len(ALS_GRID)} factors {factors:>3} regularization {regularization:>4} "
            f"alpha {alpha}: NDCG@10 {ndcg:.4f}")
        if ndcg >= max(g["ndcg"] for g in grid):
            lists["als"] = candidate
    timings["baselines"] = time.perf_counter() - started
    best = max(grid, key=lambda g: g["ndcg"])
    say(f"ALS chosen on the test set itself: {best}")

    started = time.perf_counter()
    lists.update(oracle_lists(platform, users, holdout["seed"], holdout["size"]))
    timings["oracle"] = time.perf_counter() - started

    groups = group_users(platform, users)
    results = {"non_dismiss": table(lists, relevant, groups), "engaged": table(lists, engaged, groups)}
    print_table("Relevant: held-out non-dismiss events (view included). taste = hidden match only, oracle = match "
                "and exposure; /base = served / max(popularity, ALS), /orcl = served / oracle", results["non_dismiss"])
    print_table("Relevant: held-out engaged events only (not view, not dismiss)", results["engaged"])
    return {"world": holdout["size"], "seed": holdout["seed"], "min_events": holdout["min_events"],
            "held_out_events": len(holdout["events"]), "users": len(users), "refused": dict(refused),
            "fallback_paths": dict(paths), "served_outside_candidates": outside, "short_answers": short,
            "dropped_relevant": dict(dropped), "als_grid": grid, "als_chosen": best, "seconds": timings,
            "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in WORLD.items():
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-events", type=int, default=2, help="users with fewer events keep them all")
    parser.add_argument("--reuse", action="store_true", help="skip seeding, holding out and training")
    parser.add_argument("--holdout", type=Path, help="where the held-out events are kept "
                                                     "(default var/served_quality_<database>.json)")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args()
    import django

    django.setup()  # connects lazily: the database may still be re-created below
    url = os.environ["DATABASE_URL"]
    name = Path(urlparse(url).path).stem
    holdout_path = args.holdout or ROOT / "var" / f"served_quality_{name}.json"
    say(f"database {url}, models in {os.environ['MODEL_DIR']}")
    started = time.perf_counter()
    if not args.reuse:
        build(args, holdout_path)
    elif not holdout_path.exists():
        sys.exit(f"--reuse needs the held-out events of an earlier run: {holdout_path} is missing")
    holdout = json.loads(holdout_path.read_text())
    if args.reuse:
        say(f"reusing the world of seed {holdout['seed']}, {holdout['size']} (its own options, not these flags)")
    numbers = evaluate(args, holdout)
    numbers["seconds"]["total"] = time.perf_counter() - started
    say(f"\ntotal {numbers['seconds']['total']:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(numbers, indent=1))
        say(f"wrote {args.json}")


if __name__ == "__main__":
    main()
