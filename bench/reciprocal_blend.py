"""How to blend the other side's interest: mutual matches@10 and NDCG@10 of the served ranking with each
reciprocal weight, and with a harmonic mean of the two sides' percentile ranks, on the latest training run's
held-out split (the what-if's split: nothing is fitted, each configuration ranks every evaluated user
through ``ml.evaluation.served_lists``, the API's ranker).

    .venv/bin/python manage.py seed_demo && .venv/bin/python manage.py train_models   # once
    .venv/bin/python bench/reciprocal_blend.py                          # the weights below and the harmonic
    .venv/bin/python bench/reciprocal_blend.py --weights 0,0.3,1 --json bench/results/reciprocal.json

RECIPROCAL_WEIGHT (recsys_site/settings.py) is the weight with the most mutual matches for founders and
developers whose forward NDCG@10, for developers and for founders each, is at most 3% below one-sided
ranking (weight 0), on the demo world and on a world ten times its size.
The harmonic mean is 2fr / (f + r) of each candidate's forward percentile rank f and reverse percentile rank
r among the user's candidates (an unknown reverse counts 0.5), as reciprocal recommenders often combine the
two directions.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsys_site.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
os.environ.setdefault("DEBUG", "0")

import django  # noqa: E402

django.setup()

from scipy.stats import rankdata  # noqa: E402

from ml import evaluation  # noqa: E402
from ml.core.ranker import Ranker  # noqa: E402

ROLES = ("developer", "founder", "investor")
ASKED = ("developer", "founder")  # whose recommendations ask the other side to answer
NDCG_FLOOR = 0.97  # forward NDCG@10 may fall at most 3%


class HarmonicRanker(Ranker):
    """The served ranker with the two directions combined by a harmonic mean of percentile ranks."""

    def _two_sided(self, relevance: np.ndarray, theirs: np.ndarray | None) -> np.ndarray:
        if theirs is None:
            return relevance
        forward = rankdata(relevance) / len(relevance)
        known = np.isfinite(theirs)
        reverse = np.full(len(theirs), 0.5)
        reverse[known] = rankdata(theirs[known]) / known.sum()
        return (2 * forward * reverse / (forward + reverse)).astype(np.float32)


def measure(held_out, weights, by_role, reciprocal_weight: float, harmonic: bool = False) -> dict:
    if harmonic:
        with mock.patch("ml.serving_set.Ranker", HarmonicRanker):
            metrics = held_out.measure(weights, by_role, reciprocal_weight=1.0)
    else:
        metrics = held_out.measure(weights, by_role, reciprocal_weight=reciprocal_weight)
    row = {"ndcg": metrics["all"]["ndcg"], "mutual": metrics["all"]["mutual"]}
    for role in ROLES:
        row[f"{role}_ndcg"] = metrics["by_role"][role]["ndcg"]
        row[f"{role}_mutual"] = metrics["by_role"][role]["mutual"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="0,0.1,0.2,0.3,0.5,0.75,1,1.5",
                        help="comma-separated reciprocal weights to measure (0: one-sided)")
    parser.add_argument("--json", dest="json_path", help="also write the rows as JSON here")
    args = parser.parse_args()
    run, held_out = evaluation.latest_held_out()
    weights, by_role = run.served["weights"], run.served.get("weights_by_role", {})
    if held_out.holdout.mutual is None:
        sys.exit("the latest run's split predates mutual matches: train again")
    print(f"Training run {run.pk}: {len(held_out.holdout.users)} evaluated users; ranking each configuration")
    rows = []
    configurations = [(f"weight {float(w):g}", float(w), False) for w in args.weights.split(",")]
    configurations.append(("harmonic", 1.0, True))
    for label, weight, harmonic in configurations:
        started = time.perf_counter()
        rows.append({"blend": label, **measure(held_out, weights, by_role, weight, harmonic)})
        print(f"  {label}: {time.perf_counter() - started:.1f} s", flush=True)
    base = next((row for row in rows if row["blend"] == "weight 0"), rows[0])
    header = f"{'blend':<12} {'NDCG all':>9} {'vs 1-sided':>10}" + "".join(
        f" {role[:4] + ' NDCG':>10} {role[:4] + ' mutual':>12}" for role in ROLES)
    print("\n" + header + "\n" + "-" * len(header))
    for row in rows:
        print(f"{row['blend']:<12} {row['ndcg']:>9.4f} {row['ndcg'] / base['ndcg'] - 1:>+10.1%}" + "".join(
            f" {row[f'{role}_ndcg']:>10.4f} {row[f'{role}_mutual']:>12.4f}" for role in ROLES))
    allowed = [row for row in rows if row["blend"] != "harmonic" and all(
        row[f"{role}_ndcg"] >= NDCG_FLOOR * base[f"{role}_ndcg"] for role in ASKED)]
    best = max(allowed, key=lambda row: sum(row[f"{role}_mutual"] for role in ASKED))
    print(f"\nMost mutual matches (founders + developers) with each one's NDCG within 3% of one-sided: {best['blend']}")
    if args.json_path:
        Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_path).write_text(json.dumps({"training_run": run.pk, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
