"""The offline command: fit one algorithm on CSV files and write every training user's top K.

    python -m ml.core.offline --train train.csv --users users.csv --items items.csv \
        --features features.json --algorithm hybrid --k 10 --out recs.csv --seed 0

``train.csv``: ``user_id,item_id[,rating,timestamp][,kind]``; each row is one positive interaction of
weight 1, or of its kind's weight (ml.core.data.KIND_WEIGHTS) when a ``kind`` column is present, where
``dismiss`` is negative evidence. ``users.csv`` / ``items.csv``: one row per id with the columns
``features.json`` names (a column the file lacks is ignored; ``users.csv`` may have none). Output:
``user_id,item_id,score`` for every user of ``train.csv``, their training items excluded. Progress
goes to stderr.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .base import UserState
from .data import EngineError, IdMap, InteractionData, interaction_matrices
from .features import FeaturePipeline, FeatureSpec
from .ranker import Ranker, single_threaded_blas
from .registry import COLLABORATIVE, CONTENT, EASE, POPULARITY, RP3BETA, TWO_TOWER
from .tuning import fit_tuned, tune

# The components the hybrid tunes and may blend; each earns its weight on validation.
HYBRID_COMPONENTS = (CONTENT, COLLABORATIVE, TWO_TOWER, EASE, RP3BETA, POPULARITY)
ALGORITHMS = (*HYBRID_COMPONENTS, "hybrid")


def log(message: str) -> None:
    print(f"[offline {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def read_csv(path: Path) -> list[dict]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except OSError as exc:
        raise EngineError(f"cannot read {path}: {exc}") from exc


def _by_id(records: list[dict], key: str, path: Path) -> dict[str, dict]:
    if records and key not in records[0]:
        raise EngineError(f"{path} has no {key!r} column")
    return {str(r[key]): r for r in records}


def _present(columns: dict[str, str], records: list[dict], path: Path) -> dict[str, str]:
    """The spec's columns that the file has; the others are reported and skipped."""
    header = set(records[0]) if records else set()
    missing = sorted(set(columns) - header)
    if missing and records:
        log(f"{path}: no column(s) {missing} named in the features spec; skipped")
    return {c: kind for c, kind in columns.items() if c in header}


def load_bundle(train: Path, users: Path, items: Path, features: Path) -> InteractionData:
    """InteractionData for the users of ``train`` and every item of ``items`` (and of ``train``)."""
    rows = read_csv(train)
    if not rows:
        raise EngineError(f"{train} has no interactions")
    if "user_id" not in rows[0] or "item_id" not in rows[0]:
        raise EngineError(f"{train} needs user_id and item_id columns")
    user_records, item_records = _by_id(read_csv(users), "user_id", users), _by_id(read_csv(items), "item_id", items)
    user_ids = IdMap(list(dict.fromkeys(r["user_id"] for r in rows)))
    item_ids = IdMap(list(dict.fromkeys([*item_records, *(r["item_id"] for r in rows)])))
    events = [(user_ids.row(r["user_id"]), item_ids.row(r["item_id"]), r.get("kind") or "view") for r in rows]
    weights = None if "kind" in rows[0] else {"view": 1.0}
    matrix, negatives = interaction_matrices(events, len(user_ids), len(item_ids), weights=weights)
    spec = FeatureSpec.from_json(features)
    users_in_order = [user_records.get(u, {}) for u in user_ids.ids]
    items_in_order = [item_records.get(i, {}) for i in item_ids.ids]
    spec = FeatureSpec(
        users=_present(spec.users, list(user_records.values()), users),
        items=_present(spec.items, list(item_records.values()), items),
    )
    encoded = FeaturePipeline(spec).fit(users_in_order, items_in_order).transform(users_in_order, items_in_order)
    return InteractionData(
        user_ids=user_ids,
        item_ids=item_ids,
        matrix=matrix,
        negatives=negatives if negatives.nnz else None,
        user_features=encoded.user_features if encoded.user_features.shape[1] else None,
        item_features=encoded.item_features if encoded.item_features.shape[1] else None,
        user_content=encoded.user_content,
        item_content=encoded.item_content,
        content_vocab=encoded.content_vocab,
    ).validate()


def fit_ranker(algorithm: str, data: InteractionData, seed: int) -> Ranker:
    """The ranker of the named algorithm: one component, or the hybrid's tuned blend (``fit_hybrid``),
    or popularity alone; settings (and the hybrid's weights) are chosen on validation from ``data``."""
    if algorithm not in ALGORITHMS:
        raise EngineError(f"unknown algorithm {algorithm!r}; choose one of {ALGORITHMS}")
    popularity = item_popularity(data.matrix)
    if algorithm == "hybrid":
        return fit_hybrid(data, seed, progress_to_stderr)
    if algorithm == POPULARITY:
        return Ranker({}, {}, data.n_items, popularity=popularity)
    model = fit_tuned(algorithm, data, seed=seed, progress=progress_to_stderr)
    return Ranker({algorithm: model}, {algorithm: 1.0}, data.n_items, popularity=popularity)


def fit_hybrid(data: InteractionData, seed: int, progress=None) -> Ranker:
    """Every component tuned on validation carved from ``data``, the weights with them; the components
    that earned a weight (and content, the cold-start path) refitted on all of ``data``, except the
    Two-Tower, which serves as fitted on the fold (unless the search ran on a sample of it): it is most of
    the fit time, and on ml-100k (seeds 0-2) keeping it scored the same as refitting it. A component that
    fails to fit is left out."""
    tuned = tune(list(HYBRID_COMPONENTS), data, seed=seed, progress=progress)
    models, unavailable = {}, dict(tuned.validation.get("failed", {}))
    for name, maker in tuned.makers.items():
        if name == POPULARITY or (tuned.weights.get(name, 0) <= 0 and name != CONTENT):
            continue  # the ranker holds popularity itself
        try:
            reused = name == TWO_TOWER and not tuned.sampled  # a sample's fit has the sample's numbering
            models[name] = tuned.fold_models[name] if reused else maker().fit(data, progress=progress)
        except EngineError as exc:
            unavailable[name] = str(exc)
    weights = tuned.weights or {name: 1.0 for name in models}
    return Ranker(models, weights, data.n_items, popularity=item_popularity(data.matrix), unavailable=unavailable)


def item_popularity(matrix: sp.csr_matrix) -> np.ndarray:
    """(n_items,) users who interacted with each item."""
    return np.bincount(sp.csr_matrix(matrix).indices, minlength=matrix.shape[1]).astype(np.float32)


def rank_users(ranker: Ranker, data: InteractionData, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(items, scores), each (n_users, k), -1 / -inf padded: every user's top ``k`` through the ranker,
    from their training rows, their interacted and dismissed items left out."""
    items = np.full((data.n_users, k), -1, dtype=np.int64)
    scores = np.full((data.n_users, k), -np.inf, dtype=np.float32)
    empty = sp.csr_matrix((1, data.n_items), dtype=np.float32)
    with single_threaded_blas():
        for user in range(data.n_users):
            state = UserState(user, data.matrix[user], empty if data.negatives is None else data.negatives[user],
                              None if data.user_content is None else data.user_content[user],
                              None if data.user_features is None else data.user_features[user])
            ranking = ranker.rank(state, k)
            items[user, :len(ranking.items)], scores[user, :len(ranking.items)] = ranking.items, ranking.scores
            if (user + 1) % 1000 == 0:
                log(f"ranked {user + 1} of {data.n_users} users")
    return items, scores


def progress_to_stderr(event: str, info: dict) -> None:
    shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items())
    log(f"{event}: {shown}")


def write_recommendations(path: Path, data: InteractionData, items: np.ndarray, scores: np.ndarray) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["user_id", "item_id", "score"])
        for user, (row_items, row_scores) in enumerate(zip(items, scores, strict=True)):
            for item, score in zip(row_items, row_scores, strict=True):
                if item >= 0:
                    writer.writerow([data.user_ids.ids[user], data.item_ids.ids[item], f"{score:.6g}"])


def run(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    data = load_bundle(args.train, args.users, args.items, args.features)
    log(f"loaded {data.n_users} users, {data.n_items} items, {data.matrix.nnz} interactions, "
        f"{len(data.content_vocab or [])} content terms")
    ranker = fit_ranker(args.algorithm, data, args.seed)
    log(f"fitted {args.algorithm} in {time.perf_counter() - started:.1f}s: weights {ranker.weights}"
        + (f", left out {ranker.unavailable}" if ranker.unavailable else ""))
    items, scores = rank_users(ranker, data, args.k)
    write_recommendations(args.out, data, items, scores)
    log(f"wrote {args.out} in {time.perf_counter() - started:.1f}s")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ml.core.offline", description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, required=True, help="user_id,item_id[,rating,timestamp][,kind]")
    parser.add_argument("--users", type=Path, required=True, help="users.csv: user_id and feature columns")
    parser.add_argument("--items", type=Path, required=True, help="items.csv: item_id and feature columns")
    parser.add_argument("--features", type=Path, required=True, help="features.json: each column's kind")
    parser.add_argument("--algorithm", choices=ALGORITHMS, default="hybrid")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except EngineError as exc:
        log(f"error: {exc}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
