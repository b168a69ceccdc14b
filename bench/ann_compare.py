"""Maximum-inner-product retrieval at a million items: the in-house cluster index against faiss and usearch.

    nice -n 5 .venv/bin/python bench/ann_compare.py [--items 1000000] [--queries 1000]

The vectors are ALS item factors (float32, as many as ALSConfig's: 64 since issue 14's training at a
million, 128 when the README's table was measured; ml.core.collaborative's ALSConfig: regularization 30,
alpha 5, binary cells) trained with implicit on a synthetic long-tailed, clustered interaction matrix of
the million world's shape (1,000,000 users x 1,000,000 items, 10,000,000 interactions, 5,000 tastes),
cached under var/ann_compare/ (the first run trains them, a few minutes on 2 cores; --factors DIR reads
a trained collaborative model's instead: the version's directory under MODEL_DIR). The queries
are 1,000 users' factors, the vector serving scores items with; each query's allowed items are 90% of
the catalog (closed positions left out) less the user's own interactions, the ``keep`` mask serving
passes.

For each index: build time (the whole million, as a web process builds it when the models load), memory
(the index's own bytes, and the process's resident-memory growth while it was built), and per query,
one at a time on one thread as a request runs: median and p99 latency for the 200 candidates serving
asks each component for, recall@10 (the index's best 10 against the exact best 10 of the allowed items)
and candidate recall (the share of the exact best 10 among the 200 candidates, what the blend can still
find). Prints a table and writes bench/results/ann_compare.json. A benchmark, never a test.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CANDIDATES = 200  # what serving asks each component for (RetrievalConfig.candidates)
K = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--latency-queries", type=int, default=300, help="queries timed per setting")
    parser.add_argument("--factors", type=Path, help="directory with item_factors.npy and user_factors.npy")
    parser.add_argument("--skip", default="", help="comma-separated: inhouse,faiss,usearch")
    parser.add_argument("--unit", action="store_true",
                        help="unit-length vectors and queries, as the Two-Tower's embeddings are (cosine)")
    parser.add_argument("--build-threads", type=int, default=2)
    parser.add_argument("--usearch-items", type=int, default=1_000_000,
                        help="index only the first this many items with usearch (its build is the slowest)")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    items, users, seen = load_factors(args)
    rng = np.random.default_rng(1)
    with_history = np.flatnonzero(np.diff(seen.indptr) > 0)
    queried = rng.choice(with_history if len(with_history) else len(users), size=args.queries, replace=False)
    queries = users[queried]
    if args.unit:
        items = items / np.maximum(np.linalg.norm(items, axis=1, keepdims=True), 1e-30)
        queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-30)
    open_items = rng.random(len(items)) < 0.9
    keeps = [keep_of(open_items, seen, user) for user in queried]
    print(f"{len(items):,} items x {items.shape[1]} factors, {len(queries):,} queries; "
          f"{(~items.any(axis=1)).sum():,} items no user interacted with", flush=True)

    started = time.perf_counter()
    exact = exact_top(items, queries, keeps, K)
    exact_s = time.perf_counter() - started
    print(f"exact top {K} of all queries: {exact_s:.1f} s", flush=True)

    rows = []
    rows.append(measure("exact (numpy)", "all items scored", lambda q, keep, n: exact_one(items, q, keep, n),
                        queries, keeps, exact, args, limit=50))
    if "inhouse" not in skip:
        rows += inhouse_rows(items, queries, keeps, exact, args)
    if "faiss" not in skip:
        rows += faiss_rows(items, queries, keeps, exact, args)
    if "usearch" not in skip:
        rows += usearch_rows(items, queries, keeps, exact, args)
    report(rows, items, queries, args)


# ---------------------------------------------------------------- vectors


def load_factors(args) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
    """(item factors, user factors, each user's interactions as a CSR)."""
    if args.factors:  # a trained model keeps no interactions: its users are queried with none left out
        from ml.core.base import load_artifact

        _, arrays = load_artifact(args.factors)
        items, users = (np.asarray(arrays[name], dtype=np.float32) for name in ("item_factors", "user_factors"))
        return items, users, sp.csr_matrix((len(users), len(items)), dtype=np.float32)
    cache = ROOT / "var" / "ann_compare" / f"als_{args.items}.npz"
    if cache.exists():
        saved = np.load(cache)
        seen = sp.csr_matrix((saved["data"], saved["indices"], saved["indptr"]), shape=saved["shape"])
        return saved["items"], saved["users"], seen
    matrix = synthetic_interactions(args.items, args.items, 10 * args.items)
    started = time.perf_counter()
    items, users = train_als(matrix)
    print(f"ALS trained in {time.perf_counter() - started:.0f} s", flush=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, items=items, users=users, data=matrix.data, indices=matrix.indices, indptr=matrix.indptr,
             shape=np.array(matrix.shape))
    return items, users, matrix


def synthetic_interactions(n_users: int, n_items: int, n_interactions: int, n_tastes: int = 5000,
                           seed: int = 0) -> sp.csr_matrix:
    """Binary (users, items): each item has one taste and a long-tailed (log-normal) appeal; each user a
    long-tailed activity and two tastes. An interaction is with the user's first taste (60%), their second
    (25%) or anything popular (15%), each item drawn in proportion to its appeal."""
    rng = np.random.default_rng(seed)
    taste_of_item = np.sort(rng.integers(n_tastes, size=n_items))  # items grouped by taste
    appeal = np.cumsum(rng.lognormal(0.0, 1.5, size=n_items))
    starts = np.searchsorted(taste_of_item, np.arange(n_tastes))
    stops = np.searchsorted(taste_of_item, np.arange(n_tastes), side="right")
    activity = np.cumsum(rng.lognormal(0.0, 1.0, size=n_users))
    user = np.minimum(np.searchsorted(activity, rng.random(n_interactions) * activity[-1]), n_users - 1)
    tastes = rng.integers(n_tastes, size=(n_users, 2))
    pick = rng.random(n_interactions)
    taste = np.where(pick < 0.6, tastes[user, 0], tastes[user, 1])
    low = np.where(starts[taste] > 0, appeal[np.maximum(starts[taste] - 1, 0)], 0.0)
    high = appeal[np.maximum(stops[taste] - 1, 0)]
    within = np.searchsorted(appeal, low + rng.random(n_interactions) * (high - low))
    anywhere = np.searchsorted(appeal, rng.random(n_interactions) * appeal[-1])
    item = np.minimum(np.where(pick < 0.85, within, anywhere), n_items - 1)
    matrix = sp.csr_matrix((np.ones(n_interactions, np.float32), (user, item)), shape=(n_users, n_items))
    matrix.data[:] = 1.0  # binary, as ALSConfig.binary
    return matrix


def train_als(matrix: sp.csr_matrix, iterations: int = 6) -> tuple[np.ndarray, np.ndarray]:
    from implicit.cpu.als import AlternatingLeastSquares

    from ml.core.collaborative import ALSConfig

    config = ALSConfig()
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(factors=config.factors, regularization=config.regularization,
                                        alpha=config.alpha, iterations=iterations, random_state=0)
        model.fit(matrix, show_progress=False)
    return np.asarray(model.item_factors, np.float32), np.asarray(model.user_factors, np.float32)


def keep_of(open_items: np.ndarray, seen: sp.csr_matrix, user: int) -> np.ndarray:
    keep = open_items.copy()
    keep[seen.indices[seen.indptr[user]:seen.indptr[user + 1]]] = False
    return keep


# ---------------------------------------------------------------- exact


def exact_top(items: np.ndarray, queries: np.ndarray, keeps: list[np.ndarray], k: int,
              block: int = 100_000) -> np.ndarray:
    """(queries, k) the best allowed items of each query, by blocks of items (a full score matrix would
    be 4 GB)."""
    keep = np.stack(keeps)
    best_rows = np.empty((len(queries), 0), np.int64)
    best_scores = np.empty((len(queries), 0), np.float32)
    for start in range(0, len(items), block):
        scores = queries @ items[start:start + block].T
        scores[~keep[:, start:start + block]] = -np.inf
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        best_rows = np.hstack([best_rows, top + start])
        best_scores = np.hstack([best_scores, np.take_along_axis(scores, top, axis=1)])
        order = np.argsort(-best_scores, axis=1)[:, :k]
        best_rows, best_scores = np.take_along_axis(best_rows, order, 1), np.take_along_axis(best_scores, order, 1)
    return best_rows


def exact_one(items, query, keep, n):
    scores = items @ query
    scores[~keep] = -np.inf
    top = np.argpartition(-scores, n - 1)[:n]
    return top[np.argsort(-scores[top])]


# ---------------------------------------------------------------- indexes


def inhouse_rows(items, queries, keeps, exact, args) -> list[dict]:
    from ml.core.retrieval import ClusterIndex, RetrievalConfig

    config = RetrievalConfig()
    index, built = timed_build(lambda: ClusterIndex(items, None, np.arange(len(items)), config))
    n_clusters = index.centroids_t.shape[1]
    default = index.n_probe
    bytes_ = index.vectors.nbytes + index.rows.nbytes + index.centroids_t.nbytes + index.bounds.nbytes
    rows = []
    for probe in sorted({default // 4, default // 2, default, default * 2}):
        index.n_probe = probe
        label = f"{n_clusters} clusters, probe {probe}" + (" (today)" if probe == default else "")
        rows.append(measure("in-house ClusterIndex", label, index.search, queries, keeps, exact, args,
                            built=built, index_bytes=bytes_))
    return rows


def faiss_rows(items, queries, keeps, exact, args) -> list[dict]:
    import faiss

    from ml.core.retrieval import FaissIndex, RetrievalConfig

    rows = []
    # IVF-Flat alone, then as adopted: the longest vectors scored exactly beside the lists (FaissIndex)
    for per_list, head, probes in ((1000, 0.0, (16, 64)), (250, 0.0, (32, 128)), (1000, 0.01, (8, 16, 32)),
                                   (1000, 0.02, (8, 16))):
        faiss.omp_set_num_threads(args.build_threads)
        config = RetrievalConfig(dense_items_per_list=per_list, dense_exact_head=head)
        index, built = timed_build(lambda config=config: FaissIndex(items, None, np.arange(len(items)), config))
        n_lists = index.index.nlist
        bytes_ = ((index.index.ntotal + len(index.head_rows)) * (items.shape[1] * 4 + 8)
                  + n_lists * items.shape[1] * 4)
        name = "faiss IndexIVFFlat" + (f" + {head:.0%} longest exact" if head else "")
        for probe in probes:
            index.n_probe = probe
            rows.append(measure(name, f"nlist {n_lists}, nprobe {probe}", index.search, queries, keeps, exact, args,
                                built=built, index_bytes=bytes_))
        index = None  # freed before the next is built
    return rows


def usearch_rows(items, queries, keeps, exact, args) -> list[dict]:
    from usearch.index import Index

    keys = np.flatnonzero(items[:args.usearch_items].any(axis=1)).astype(np.uint64)
    if args.usearch_items < len(items):  # the exact answers of the part indexed
        exact = exact_top(items[:args.usearch_items], queries, [keep[:args.usearch_items] for keep in keeps], K)

    def build():
        index = Index(ndim=items.shape[1], metric="ip", dtype="f32", connectivity=16, expansion_add=128)
        index.add(keys, items[keys.astype(np.int64)], threads=args.build_threads)
        return index

    index, built = timed_build(build)
    rows = []
    for ef in (200, 400, 800):
        index.expansion_search = ef

        def search(q, keep, n, ef=ef):
            found = index.search(q, ef, threads=1).keys.astype(np.int64)  # over-fetch ef, then filter
            return found[keep[found]][:n]

        rows.append(measure(f"usearch HNSW at {len(keys):,}", f"M 16, ef_add 128, ef {ef}", search,
                            queries, keeps, exact, args, built=built, index_bytes=index.memory_usage))
    return rows


def timed_build(make):
    rss = psutil.Process().memory_info().rss
    started = time.perf_counter()
    index = make()
    built = {"build_s": round(time.perf_counter() - started, 1),
             "rss_growth_mb": round((psutil.Process().memory_info().rss - rss) / 2**20)}
    print(f"  built in {built['build_s']} s, resident memory +{built['rss_growth_mb']} MB", flush=True)
    return index, built


def measure(name, setting, search, queries, keeps, exact, args, *, built=None, index_bytes=0,
            limit=None) -> dict:
    """Recall over all queries; latency of the first ``--latency-queries`` (or ``limit``), one thread."""
    timed = min(len(queries), limit or args.latency_queries)
    recalls, candidate_recalls, times = [], [], []
    with threadpool_limits(1):
        for i, (query, keep) in enumerate(zip(queries, keeps, strict=True)):
            if i >= timed and limit:
                break
            began = time.perf_counter()
            found = search(query, keep, CANDIDATES)
            elapsed = time.perf_counter() - began
            if i < timed:
                times.append(elapsed * 1000)
            truth = set(exact[i].tolist())
            recalls.append(len(truth & set(found[:K].tolist())) / K)
            candidate_recalls.append(len(truth & set(found.tolist())) / K)
    row = {"index": name, "setting": setting, "recall_at_10": round(float(np.mean(recalls)), 4),
           "candidate_recall": round(float(np.mean(candidate_recalls)), 4),
           "median_ms": round(float(np.median(times)), 2), "p99_ms": round(float(np.percentile(times, 99)), 2),
           "queries": len(recalls), **(built or {}), "index_mb": round(index_bytes / 2**20)}
    print(f"  {name:<44} {setting:<32} recall@10 {row['recall_at_10']:.3f}  in 200 {row['candidate_recall']:.3f}  "
          f"p50 {row['median_ms']:.2f} ms  p99 {row['p99_ms']:.2f} ms", flush=True)
    return row


def report(rows, items, queries, args) -> None:
    machine = f"{cpu_model()}, {psutil.cpu_count()} cores"
    shape = f"{len(items):,} items x {items.shape[1]}" + (" (unit length)" if args.unit else "")
    print(f"\n{shape}, {len(queries):,} queries, {CANDIDATES} candidates per query, "
          f"one thread per query; {machine}")
    print(f"{'index':<44} {'setting':<32} {'R@10':>6} {'in200':>6} {'p50 ms':>7} {'p99 ms':>7} {'build s':>8} "
          f"{'MB':>6}")
    for row in rows:
        print(f"{row['index']:<44} {row['setting']:<32} {row['recall_at_10']:>6.3f} {row['candidate_recall']:>6.3f} "
              f"{row['median_ms']:>7.2f} {row['p99_ms']:>7.2f} {row.get('build_s', 0):>8.1f} {row['index_mb']:>6}")
    out = ROOT / "bench" / "results" / ("ann_compare_unit.json" if args.unit else "ann_compare.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine, "items": len(items), "dims": int(items.shape[1]), "unit": args.unit,
                               "queries": len(queries), "candidates": CANDIDATES, "rows": rows}, indent=1))
    print(f"written {out.relative_to(ROOT)}")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
