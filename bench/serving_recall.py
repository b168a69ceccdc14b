"""What the cluster-index retrieval costs in quality and buys in speed, on the world bench/api_latency.py built.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/latencybench .venv/bin/python bench/serving_recall.py

For random developers, ranks their top 10 twice in-process with the active models: with the serving
default (ml.core.retrieval.RetrievalConfig) and exactly (every item scored, z-scores over all items).
Prints the share of the exact top 10 that the default finds (recall@10), how often the top item agrees,
and the median time of each ranking. Writes bench/results/serving_recall.json.
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
    parser.add_argument("--min-probe", type=int)
    parser.add_argument("--candidates", type=int, help="candidates per component and group")
    parser.add_argument("--items-per-cluster", type=int)
    args = parser.parse_args()

    import django

    django.setup()
    from ml.core.ranker import Ranker, single_threaded_blas
    from ml.core.retrieval import Retrieval, RetrievalConfig
    from ml.platform_data import parse_item_key
    from ml.selectors import current_weights
    from profiles.models import Developer, ItemType, Role
    from recommendations import selectors
    from recommendations.model_store import serving_models

    started = time.perf_counter()
    models = serving_models().serving
    if not models.ready:
        sys.exit("no content model is active: run bench/api_latency.py first")
    print(f"models loaded and indexed in {time.perf_counter() - started:.1f} s "
          f"({len(models.item_ids):,} items, {len(models.retrieval.indexes)} cluster indexes)", flush=True)
    retrieval = models.retrieval
    changes = {name: getattr(args, name) for name in ("probe_share", "min_probe", "candidates", "items_per_cluster")
               if getattr(args, name) is not None}
    if changes:
        config = replace(RetrievalConfig(), **changes)
        item_types = np.asarray([parse_item_key(key)[0] for key in models.item_ids.ids])
        retrieval = Retrieval(models.components, item_types, config)
    print(f"retrieval: {retrieval.config}", flush=True)
    exact = Retrieval.exact(models.components, len(models.item_ids))
    weights = current_weights()
    allowed = models.allowed((ItemType.POSITION, ItemType.STARTUP))
    rng = np.random.default_rng(0)
    users = rng.choice(list(Developer.objects.values_list("pk", flat=True)), size=args.users, replace=False)
    recalls, top_agrees, fast_ms, exact_ms = [], [], [], []
    for n, user_id in enumerate(users, start=1):
        history, negatives = selectors.user_interaction_rows(user_id=int(user_id), item_ids=models.item_ids)
        profile = selectors.user_profile(user_id=int(user_id), role=Role.DEVELOPER)
        user = models.user_state(int(user_id), history, negatives, profile.terms, profile.features)
        answers = []
        for chosen, times in ((retrieval, fast_ms), (exact, exact_ms)):
            ranker = Ranker(models.components, weights, len(models.item_ids), popularity=models.popularity,
                            retrieval=chosen, unavailable=models.unavailable)
            with single_threaded_blas():
                began = time.perf_counter()
                answers.append(ranker.rank(user, args.k, allowed).items)
                times.append((time.perf_counter() - began) * 1000)
        fast, full = answers
        recalls.append(len(set(fast) & set(full)) / max(len(full), 1))
        top_agrees.append(bool(len(full)) and len(fast) > 0 and fast[0] == full[0])
        if n % 50 == 0:
            print(f"  {n}/{len(users)} users: recall@{args.k} so far {statistics.fmean(recalls):.3f}", flush=True)
    numbers = {"config": vars(retrieval.config), "users": len(users), "items": len(models.item_ids),
               f"recall_at_{args.k}": round(statistics.fmean(recalls), 4),
               "top1_agreement": round(statistics.fmean(top_agrees), 4), "min_recall": round(min(recalls), 2),
               "median_rank_ms_retrieval": round(statistics.median(fast_ms), 2),
               "median_rank_ms_exact": round(statistics.median(exact_ms), 2)}
    print(json.dumps(numbers, indent=1))
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "serving_recall.json").write_text(json.dumps(numbers, indent=1))


if __name__ == "__main__":
    main()
