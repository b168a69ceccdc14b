"""Training throughput of the default Two-Tower: device, seconds and examples/second per epoch, final val loss.

  python bench/train_throughput.py [--data DIR | --synthetic] [--epochs 5] [--device auto|cpu|cuda]

DIR is a CSV bundle with interactions.csv (user_id,item_id,rating,...), default ../shared/datasets/ml-100k
from the repository root; ratings >= 4 count as positives, as in the offline harness. Where DIR does not
exist (e.g. on a GPU machine that got only the working tree) or with --synthetic, a synthetic world of
ml-100k's size is used instead. Ids and histories only: throughput is the towers' and does not depend on
the feature pipeline.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ml.core.data import IdMap, InteractionData  # noqa: E402
from ml.core.train import TwoTowerRecommender  # noqa: E402
from ml.core.two_tower import TwoTowerConfig, resolve_device  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "datasets" / "ml-100k"


def load_bundle(path: Path, threshold: float = 4.0) -> InteractionData:
    users, items, pairs = {}, {}, set()
    with open(path / "interactions.csv") as f:
        for row in csv.DictReader(f):
            if float(row.get("rating") or 0) >= threshold:
                pairs.add((users.setdefault(row["user_id"], len(users)), items.setdefault(row["item_id"], len(items))))
    return _world(list(users), list(items), np.array(sorted(pairs)))


def synthetic_world(n_users: int = 943, n_items: int = 1682, n_interactions: int = 55_000,
                    seed: int = 0) -> InteractionData:
    """Users in 20 taste clusters, items with Zipf popularity: about ml-100k's size and skew."""
    rng = np.random.default_rng(seed)
    clusters = 20
    user_cluster = rng.integers(clusters, size=n_users)
    item_cluster = rng.integers(clusters, size=n_items)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    users = rng.integers(n_users, size=n_interactions * 2)
    # half the picks from the user's own cluster, half from the whole catalog, both by popularity
    own = rng.random(len(users)) < 0.5
    picks = rng.choice(n_items, size=len(users), p=popularity / popularity.sum())
    for c in range(clusters):
        members = np.flatnonzero(item_cluster == c)
        weights = popularity[members] / popularity[members].sum()
        chosen = own & (user_cluster[users] == c)
        picks[chosen] = rng.choice(members, size=int(chosen.sum()), p=weights)
    pairs = np.unique(np.stack([users, picks], axis=1), axis=0)[:n_interactions]
    return _world([str(u) for u in range(n_users)], [str(i) for i in range(n_items)], pairs)


def _world(user_ids: list[str], item_ids: list[str], pairs: np.ndarray) -> InteractionData:
    matrix = sp.csr_matrix((np.ones(len(pairs), np.float32), (pairs[:, 0], pairs[:, 1])),
                           shape=(len(user_ids), len(item_ids)))
    return InteractionData(IdMap(user_ids), IdMap(item_ids), matrix)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CSV bundle with interactions.csv")
    parser.add_argument("--synthetic", action="store_true", help="use a synthetic world of ml-100k's size")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=TwoTowerConfig().batch_size)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    if args.synthetic or not (args.data / "interactions.csv").exists():
        source = "synthetic (ml-100k size)" if args.synthetic else f"synthetic ({args.data} not found)"
        data = synthetic_world(seed=args.seed)
    else:
        source, data = str(args.data), load_bundle(args.data)
    config = replace(TwoTowerConfig(), epochs=args.epochs, batch_size=args.batch_size, device=args.device,
                     early_stopping_patience=args.epochs)
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    print(f"data: {source}: {data.n_users} users, {data.n_items} items, {data.matrix.nnz} interactions")
    print(f"device: {device.type} [{name}], torch {torch.__version__}, batch {config.batch_size}")

    def report(event: str, info: dict) -> None:
        speed = train_examples / info["seconds"]
        print(f"epoch {info['epoch']:3d}/{info['epochs']}  {info['seconds']:6.2f} s  {speed:9.0f} examples/s  "
              f"train loss {info['train_loss']:.4f}  val loss {info['val_loss']:.4f}", flush=True)

    train_examples = data.matrix.nnz - int(round(data.matrix.nnz * config.val_fraction))
    started = time.perf_counter()
    model = TwoTowerRecommender(config, seed=args.seed).fit(data, progress=report)
    log = model.training_log
    epochs = log["epochs"]
    # the first epoch carries one-off costs (CUDA context, kernel selection); the steady state is the rest
    steady = np.mean([e["seconds"] for e in epochs[1:]]) if len(epochs) > 1 else epochs[0]["seconds"]
    print(f"final val loss {epochs[-1]['val_loss']:.4f} (best {log['best_val_loss']:.4f} at epoch "
          f"{log['best_epoch']}); steady epoch {steady:.2f} s, {train_examples / steady:.0f} examples/s; "
          f"fit total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
