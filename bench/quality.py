"""Offline quality: the engine's algorithms beside the baselines on a CSV bundle, over several split seeds.

  python bench/quality.py [--bundle DIR] [--seeds 0,1,2] [--algorithms hybrid,collaborative,...] [--out DIR]

Runs ../shared/tools/offline_eval.py once per seed (it splits the bundle itself and measures the engine's
offline command against popularity, BM25 item-KNN, implicit ALS and EASE), keeps each run's JSON, and
writes under bench/results/ (git-ignored): quality.md (the table: NDCG@10 etc. per model and seed, mean,
seconds) and quality.png (NDCG@10 per model, one bar per seed). The table is printed too.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
METRICS = ("ndcg", "precision", "recall", "hit", "mrr", "coverage")


def run_seed(args: argparse.Namespace, seed: int) -> dict:
    out = args.out / f"quality-seed{seed}.json"
    command = [
        sys.executable, str(args.harness), str(args.bundle), "--cmd", f"{sys.executable} -m ml.core.offline",
        "--cwd", str(REPO), "--algorithms", args.algorithms, "--seed", str(seed), "--json", str(out),
    ]
    print(f"# seed {seed}: {' '.join(command)}", file=sys.stderr, flush=True)
    subprocess.run(command, check=True, stdout=sys.stderr)
    return json.loads(out.read_text())


def table(results: dict[int, dict]) -> str:
    seeds = sorted(results)
    models = list(dict.fromkeys(name for run in results.values() for name in run))
    head = ["model", *[f"NDCG@10 s{s}" for s in seeds], "NDCG mean", "P@10", "R@10", "Hit@10", "MRR", "cov",
            "secs"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for model in models:
        runs = [results[s].get(model) for s in seeds]
        done = [r for r in runs if r]
        if not done:
            lines.append(f"| {model} | " + " | ".join(["failed"] * (len(head) - 1)) + " |")
            continue
        ndcg = [f"{r['ndcg']:.4f}" if r else "failed" for r in runs]
        means = {m: sum(r[m] for r in done) / len(done) for m in METRICS}
        secs = [r["seconds"] for r in done if "seconds" in r]
        cells = [model, *ndcg, f"{means['ndcg']:.4f}", *(f"{means[m]:.4f}" for m in METRICS[1:5]),
                 f"{means['coverage']:.3f}", f"{sum(secs) / len(secs):.1f}" if secs else ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: dict[int, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = sorted(results)
    models = list(dict.fromkeys(name for run in results.values() for name in run))
    width = 0.8 / len(seeds)
    fig, ax = plt.subplots(figsize=(max(8, 1.2 * len(models)), 4.5))
    for n, seed in enumerate(seeds):
        values = [(results[seed].get(m) or {}).get("ndcg", 0.0) for m in models]
        ax.bar([x + n * width for x in range(len(models))], values, width, label=f"seed {seed}")
    ax.set_xticks([x + width * (len(seeds) - 1) / 2 for x in range(len(models))])
    ax.set_xticklabels([m.replace(":", "\n") for m in models], fontsize=8)
    ax.set_ylabel("NDCG@10")
    ax.set_title("Offline quality (engine vs baselines)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=SHARED / "datasets" / "ml-100k")
    parser.add_argument("--harness", type=Path, default=SHARED / "tools" / "offline_eval.py")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--algorithms", default="hybrid,collaborative,two_tower,content_based,popularity")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = {int(s): run_seed(args, int(s)) for s in args.seeds.split(",")}
    text = table(results)
    (args.out / "quality.md").write_text(f"# {args.bundle.name}\n\n{text}\n")
    plot(results, args.out / "quality.png")
    print(text)
    print(f"\nsaved {args.out / 'quality.md'} and {args.out / 'quality.png'}")


if __name__ == "__main__":
    main()
