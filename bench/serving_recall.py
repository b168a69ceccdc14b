"""What the retrieval indexes cost in quality and buy in speed, on the world bench/api_latency.py built.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/latencybench .venv/bin/python bench/serving_recall.py

For random developers, ranks their top 10 twice in-process with the active models and the weights a
developer is served (their role's own, where tuned): with the serving default
(ml.core.retrieval.RetrievalConfig) and exactly (every item scored, z-scores over all items).
Prints the share of the exact top 10 that the default finds (recall@10), how often the top item agrees,
and the median time of each ranking. Writes bench/results/serving_recall.json. ``--also-probe-shares
0.1,0.2`` measures those shares of the content index's clusters too, and ``--also-stats-samples 8192,0``
those sizes of the z-scores' sample (0: every item), against the same exact lists (the exact ranking,
seconds a user at a million items, is done once).

    .venv/bin/python bench/serving_recall.py --synthetic 100000

ranks instead on a world made in memory, no database: that many items of two types (positions,
startups) whose terms and interactions follow planted tastes, 20,000 users, the content and ALS
components fitted on it, blended half and half, 90% of the items allowed.
"""
import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsys_site.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/latencybench")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("MODEL_DIR", str(ROOT / "var" / "latency-models"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--probe-share", type=float, help="share of clusters probed (default: RetrievalConfig's)")
    parser.add_argument("--also-probe-shares", type=shares, default=[], metavar="S,S,...",
                        help="more shares measured in the same run, against the same exact lists")
    parser.add_argument("--also-stats-samples", type=sizes, default=[], metavar="N,N,...",
                        help="z-score sample sizes also measured in the same run (0: every item)")
    parser.add_argument("--min-probe", type=int)
    parser.add_argument("--candidates", type=int, help="candidates per component and group")
    parser.add_argument("--items-per-cluster", type=int)
    parser.add_argument("--dense-probe", type=int, help="faiss lists scanned per query (dense components)")
    parser.add_argument("--dense-items-per-list", type=int)
    parser.add_argument("--synthetic", type=int, metavar="ITEMS", help="rank on a world made in memory")
    args = parser.parse_args()
    if args.synthetic:
        return synthetic(args)

    import django

    django.setup()
    from ml.core.ranker import Ranker, single_threaded_blas
    from ml.core.retrieval import Retrieval, RetrievalConfig
    from ml.platform_data import parse_item_key
    from ml.selectors import weights_in_force
    from profiles.models import Developer, ItemType, Role
    from recommendations import selectors
    from recommendations.model_store import serving_models

    started = time.perf_counter()
    models = serving_models().serving
    if not models.ready:
        sys.exit("no content model is active: run bench/api_latency.py first")
    print(f"models loaded and indexed in {time.perf_counter() - started:.1f} s "
          f"({len(models.item_ids):,} items, {len(models.retrieval.indexes)} indexes)", flush=True)
    retrieval = models.retrieval
    changes = config_changes(args)
    item_types = np.asarray([parse_item_key(key)[0] for key in models.item_ids.ids])
    if changes:
        retrieval = Retrieval(models.components, item_types, replace(RetrievalConfig(), **changes))
    retrievals = [retrieval] + [Retrieval(models.components, item_types, replace(retrieval.config, probe_share=share))
                                for share in args.also_probe_shares]  # each built as a load builds it
    retrievals += [Retrieval(models.components, item_types, replace(retrieval.config, stats_sample=size or 2**62))
                   for size in args.also_stats_samples]
    print(f"retrieval: {retrieval.config}", flush=True)
    exact = Retrieval.exact(models.components, len(models.item_ids))
    weights, by_role = weights_in_force()
    weights = by_role.get(Role.DEVELOPER, weights)  # what a developer is served: their role's own, if tuned
    allowed = models.allowed((ItemType.POSITION, ItemType.STARTUP))
    rng = np.random.default_rng(0)
    users = rng.choice(list(Developer.objects.values_list("pk", flat=True)), size=args.users, replace=False)
    found: list[list[tuple[float, bool, float]]] = [[] for _ in retrievals]  # (recall, top agrees, ms) per user
    exact_ms = []

    def ranked(chosen: Retrieval, user) -> tuple[np.ndarray, float]:
        ranker = Ranker(models.components, weights, len(models.item_ids), popularity=models.popularity,
                        retrieval=chosen, unavailable=models.unavailable)
        with single_threaded_blas():
            began = time.perf_counter()
            items = ranker.rank(user, args.k, allowed).items
            return items, (time.perf_counter() - began) * 1000

    for n, user_id in enumerate(users, start=1):
        history, negatives = selectors.user_interaction_rows(user_id=int(user_id), item_ids=models.item_ids)
        profile = selectors.user_profile(user_id=int(user_id), role=Role.DEVELOPER)
        user = models.user_state(int(user_id), history, negatives, profile.terms, profile.features)
        full, ms = ranked(exact, user)
        exact_ms.append(ms)
        for chosen, results in zip(retrievals, found, strict=True):
            fast, ms = ranked(chosen, user)
            results.append((len(set(fast) & set(full)) / max(len(full), 1),
                            bool(len(full)) and len(fast) > 0 and fast[0] == full[0], ms))
        if n % 50 == 0:
            print(f"  {n}/{len(users)} users: recall@{args.k} so far "
                  + ", ".join(f"{statistics.fmean(r for r, _, _ in results):.3f}" for results in found), flush=True)
    measured = [{"config": vars(chosen.config),
                 f"recall_at_{args.k}": round(statistics.fmean(r for r, _, _ in results), 4),
                 "top1_agreement": round(statistics.fmean(top for _, top, _ in results), 4),
                 "min_recall": round(min(r for r, _, _ in results), 2),
                 "median_rank_ms_retrieval": round(statistics.median(ms for _, _, ms in results), 2)}
                for chosen, results in zip(retrievals, found, strict=True)]
    numbers = {**measured[0], "users": len(users), "items": len(models.item_ids),
               "median_rank_ms_exact": round(statistics.median(exact_ms), 2), "also": measured[1:]}
    write(numbers, "serving_recall.json")


def comma_separated(cast, valid, what: str):
    """An argparse type: a comma-separated list of ``cast`` values, each ``valid`` (``what`` says which)."""
    def parse(text: str) -> list:
        try:
            values = [cast(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what}, comma-separated, not {text!r}") from None
        if not all(valid(value) for value in values):
            raise argparse.ArgumentTypeError(f"{what}, comma-separated, not {text!r}")
        return values
    return parse


shares = comma_separated(float, lambda value: 0 < value <= 1, "shares between 0 and 1")
sizes = comma_separated(int, lambda value: value >= 0, "sizes of 0 or more")


def config_changes(args) -> dict:
    return {name: getattr(args, name) for name in ("probe_share", "min_probe", "candidates", "items_per_cluster",
                                                   "dense_probe", "dense_items_per_list")
            if getattr(args, name) is not None}


def write(numbers: dict, name: str) -> None:
    print(json.dumps(numbers, indent=1))
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / name).write_text(json.dumps(numbers, indent=1))


def synthetic(args) -> None:
    """Served recall@k on a world made in memory (see the module's docstring)."""
    import scipy.sparse as sp

    from ml.core.base import UserState
    from ml.core.collaborative import CollaborativeRecommender
    from ml.core.content import ContentRecommender
    from ml.core.data import IdMap, InteractionData
    from ml.core.features import ContentVocabulary
    from ml.core.ranker import Ranker, single_threaded_blas
    from ml.core.retrieval import Retrieval, RetrievalConfig

    n_items, n_users, n_tastes = args.synthetic, 20_000, max(50, args.synthetic // 200)
    rng = np.random.default_rng(0)
    taste_of_item = rng.integers(n_tastes, size=n_items)
    item_terms = [[f"skill:s{taste}", f"skill:s{(taste + rng.integers(1, 4)) % n_tastes}",
                   f"text:w{rng.integers(3000)}", f"text:w{rng.integers(3000)}"] for taste in taste_of_item]
    appeal = rng.lognormal(0.0, 1.0, size=n_items)
    members = [np.flatnonzero(taste_of_item == taste) for taste in range(n_tastes)]
    tastes = rng.integers(n_tastes, size=(n_users, 2))
    cells = set()
    for user, (first, second) in enumerate(tastes):
        for taste, count in ((first, 8), (second, 4)):
            pool = members[taste]
            if len(pool):
                chance = appeal[pool] / appeal[pool].sum()
                chosen = rng.choice(pool, size=min(count, len(pool)), replace=False, p=chance)
                cells.update((user, int(item)) for item in chosen)
    rows, cols = np.array(sorted(cells)).T
    vocabulary = ContentVocabulary().fit(item_terms)
    data = InteractionData(
        user_ids=IdMap([str(u) for u in range(n_users)]), item_ids=IdMap([str(i) for i in range(n_items)]),
        matrix=sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items)),
        user_content=vocabulary.transform([[f"skill:s{t}", f"skill:s{u}"] for t, u in tastes]),
        item_content=vocabulary.transform(item_terms), content_vocab=vocabulary.terms)
    started = time.perf_counter()
    models = {"content_based": ContentRecommender().fit(data), "collaborative": CollaborativeRecommender().fit(data)}
    print(f"{n_items:,} items, {n_users:,} users, {data.matrix.nnz:,} interactions; fitted in "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    groups = np.where(np.arange(n_items) < n_items * 4 // 5, "position", "startup")
    started = time.perf_counter()
    retrieval = Retrieval(models, groups, replace(RetrievalConfig(), **config_changes(args)))
    built_s = time.perf_counter() - started
    print(f"indexes built in {built_s:.1f} s: {sorted({type(i).__name__ for i in retrieval.indexes.values()})}; "
          f"{retrieval.config}", flush=True)
    exact = Retrieval.exact(models, n_items)
    weights = {"content_based": 0.5, "collaborative": 0.5}
    allowed = rng.random(n_items) < 0.9
    recalls, fast_ms, exact_ms = [], [], []
    for user in rng.choice(n_users, size=args.users, replace=False):
        state = UserState(int(user), data.matrix[user], sp.csr_matrix((1, n_items)), data.user_content[user])
        answers = []
        for chosen, times in ((retrieval, fast_ms), (exact, exact_ms)):
            ranker = Ranker(models, weights, n_items, retrieval=chosen)
            with single_threaded_blas():
                began = time.perf_counter()
                answers.append(ranker.rank(state, args.k, allowed).items)
                times.append((time.perf_counter() - began) * 1000)
        recalls.append(len(set(answers[0]) & set(answers[1])) / max(len(answers[1]), 1))
    write({"world": "synthetic", "config": vars(retrieval.config), "users": len(recalls), "items": n_items,
           "index_build_s": round(built_s, 1), f"recall_at_{args.k}": round(statistics.fmean(recalls), 4),
           "min_recall": round(min(recalls), 2), "median_rank_ms_retrieval": round(statistics.median(fast_ms), 2),
           "median_rank_ms_exact": round(statistics.median(exact_ms), 2)}, "serving_recall_synthetic.json")


if __name__ == "__main__":
    main()
