"""Measure the recommendations as the API serves them, on a fresh time-based holdout of the current data.

    python manage.py evaluate                       # table on stdout, bars in var/evaluation.png
    python manage.py evaluate --plot /tmp/e.png --algorithms content_based,collaborative
    python manage.py evaluate --weights '{"content_based": 1}'          # served with these weights instead
    python manage.py evaluate --held-out latest --weights '{...}'       # the what-if's numbers, in seconds
    python manage.py evaluate --diversity 0.3 --max-per-startup 2       # re-ranked so instead of the defaults

Each user's latest 20% of events are held out; the training procedure (settings and weights tuned on
validation carved from the earlier events, the chosen settings fitted on them) runs on the earlier 80%,
and every evaluated user is ranked through the API's ranker (ml/evaluation.py). Nothing is stored and
the models that serve are not touched. ``--held-out latest`` fits nothing: it ranks the latest training
run's held-out models (each user's earlier events, saved by the training), the split on which
POST /api/v1/models/weights/evaluate measures a proposal. The lists are re-ranked for diversity and
exposure as a request with ``diversity`` and ``max_per_startup`` (the API's defaults unless given), and the
table shows, beside coverage and intra-list diversity, the exposure Gini (how unequally the top 10s spread
over startups).
"""
import argparse
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from matplotlib.figure import Figure

from ml import evaluation
from ml.core.data import EngineError
from ml.core.diversify import DEFAULT_DIVERSITY, DEFAULT_MAX_PER_STARTUP
from ml.models import BLENDED, Algorithm
from ml.serving_set import Diversify
from recsys_site.exceptions import Conflict, DomainError

ROWS = [("all", None), *((role, "by_role") for role in evaluation.ROLES),
        *((segment, "by_segment") for segment in evaluation.SEGMENTS)]
SERVED_COLOUR, POPULARITY_COLOUR, ORACLE_COLOUR = "#2563eb", "#94a3b8", "#16a34a"


class Command(BaseCommand):
    help = "Train on each user's earlier 80% of events, rank the latest 20% as the API serves, print and plot it."

    def add_arguments(self, parser):
        parser.add_argument("--algorithms", default=",".join(Algorithm.values),
                            help=f"comma-separated subset of {', '.join(Algorithm.values)}")
        parser.add_argument("--plot", default="var/evaluation.png", help="where to write the PNG of NDCG@10 bars")
        parser.add_argument("--demo-seed", type=int, default=evaluation.DEMO_SEED,
                            help="the seed_demo --seed of a demo world, for its oracle (default %(default)s)")
        parser.add_argument("--weights", type=_weights_argument,
                            help='serve with these weights (JSON: {"content_based": 1}) instead of the tuned ones')
        parser.add_argument("--held-out", choices=["fresh", "latest"], default="fresh",
                            help="fresh: split and fit now (default); latest: the latest training run's held-out "
                                 "models, fitting nothing (--algorithms does not apply)")
        parser.add_argument("--json", dest="json_path", help="also write the result as JSON to this path")
        parser.add_argument("--diversity", type=_diversity_argument, default=DEFAULT_DIVERSITY,
                            help="0-1, as the request field (default %(default)s, the API's)")
        parser.add_argument("--max-per-startup", type=_cap_argument, default=DEFAULT_MAX_PER_STARTUP,
                            help="at most this many results of one startup, as the request field (default: none)")

    def handle(self, *args, algorithms: str, plot: str, demo_seed: int, weights: dict | None, held_out: str,
               json_path: str | None, diversity: float, max_per_startup: int | None, **options):
        names = [a.strip() for a in algorithms.split(",") if a.strip()]
        unknown = sorted(set(names) - set(Algorithm.values))
        if unknown or not names:
            raise CommandError(f"--algorithms must be a non-empty subset of {', '.join(Algorithm.values)}")
        diversify = Diversify(diversity, max_per_startup)
        try:
            if held_out == "latest":
                result = evaluation.evaluate_latest_run(weights, demo_seed, diversify)
                self.stdout.write(f"On the held-out split of training run {result['training_run']} (nothing fitted)")
            else:
                result = evaluation.evaluate_platform(names, demo_seed, progress=self._show, weights=weights,
                                                      diversify=diversify)
        except EngineError as exc:
            raise CommandError(f"Nothing to evaluate: {exc}") from None
        except (Conflict, DomainError) as exc:
            raise CommandError(str(exc.detail)) from None
        for name, why in result["skipped"].items():
            self.stdout.write(self.style.WARNING(f"  {name}: left out ({why})"))
        self.stdout.write(f"\nServed with weights {_weights(result['weights'])}; {result['holdout']['users']} users, "
                          f"{result['holdout']['events']} held-out events ({result['holdout']['fraction']:.0%} of "
                          f"each user's latest), K = {evaluation.K}; {result['total_seconds']} s in all")
        self.stdout.write(f"Re-ranked with diversity {diversify.diversity}, max_per_startup "
                          f"{diversify.max_per_startup or 'none'}")
        for role, weights in result["weights_by_role"].items():
            self.stdout.write(f"  {role}s' own weights: {_weights(weights)}")
        if result["oracle"] is None:
            self.stdout.write("No oracle: the data is not the demo world of seed "
                              f"{demo_seed} (pass --demo-seed for another).")
        elif result["oracle"]["all"]["users"] < result["holdout"]["users"]:
            self.stdout.write(f"The oracle ranked a fixed sample of {result['oracle']['all']['users']} of them "
                              "(its users times items are bounded: evaluation.ORACLE_MAX_PAIRS).")
        self.stdout.write(table(result))
        self.stdout.write(reciprocal_table(result))
        self.stdout.write("\nEach component served alone (all users): " + ", ".join(
            f"{name} {_number(m['ndcg'])}" for name, m in result["alone"].items()))
        path = Path(plot)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(ndcg_png(result))
        self.stdout.write(self.style.SUCCESS(f"Plot written to {path}"))
        if json_path:
            Path(json_path).write_text(json.dumps(result, indent=1))
            self.stdout.write(self.style.SUCCESS(f"Result written to {json_path}"))

    def _show(self, event: str, info: dict) -> None:
        if event == "split":
            self.stdout.write(f"Holding out each user's latest {evaluation.HOLDOUT_FRACTION:.0%} of events: "
                              f"{info['held_out_events']} events of "
                              f"{info['users']} users, {info['items']} items")
        elif event == "component":
            self.stdout.write(f"  {info['algorithm']}: setting chosen in {info['seconds']}s"
                              + ("" if info["ok"] else " (it failed)"))
        elif event == "weights":
            self.stdout.write(f"  weights tuned on validation: {_weights(info)}")
        elif event == "fitted":
            self.stdout.write(f"Fitted {', '.join(info['algorithms'])} on the earlier events")
        elif event == "ranking":
            self.stdout.write(f"Ranking {info['users']} users as served (oracle: {info['oracle']})")
        elif event == "epoch" and info.get("epoch") == info.get("epochs"):
            self.stdout.write(f"  two_tower: {info['epochs']} epochs")


def _weights_argument(text: str) -> dict:
    try:
        weights = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(weights, dict):
        raise argparse.ArgumentTypeError('a JSON object of weights, e.g. {"content_based": 1}')
    return weights


def _diversity_argument(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a number from 0 to 1, not {text!r}")
    return value


def _cap_argument(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a whole number of at least 1, not {text!r}")
    return int(text)


def table(result: dict) -> str:
    """One row per group: users, NDCG@10 of served, popularity and oracle with the ratios, then the served
    ranking's recall@10, mutual matches@10, coverage, diversity and exposure Gini (per startup; "-" for
    founders, who are served people)."""
    header = (f"{'group':<10} {'users':>6} {'served':>8} {'popular':>8} {'oracle':>8} {'srv/pop':>8} {'srv/orc':>8} "
              f"{'recall':>8} {'mutual':>8} {'coverage':>8} {'divers.':>8} {'gini':>8}")
    lines = ["", "NDCG@10 as served, beside popularity and the oracle on the same candidates", header,
             "-" * len(header)]
    for name, served, popularity, oracle in _groups(result):
        lines.append(
            f"{name:<10} {served['users']:>6} {_number(served['ndcg']):>8} {_number(popularity['ndcg']):>8} "
            f"{_number(oracle.get('ndcg')):>8} {_number(evaluation.ratio(served['ndcg'], popularity['ndcg']), 2):>8} "
            f"{_number(evaluation.ratio(served['ndcg'], oracle.get('ndcg')), 2):>8} {_number(served['recall']):>8} "
            f"{_number(served.get('mutual')):>8} "
            f"{_number(served['coverage']):>8} {_number(served['diversity']):>8} {_number(served.get('gini')):>8}")
    return "\n".join(lines)


def reciprocal_table(result: dict) -> str:
    """Per role, mutual matches@10 and NDCG@10 of the ranking as served (the other side's interest blended
    with RECIPROCAL_WEIGHT) beside the same ranking of one side's interest only."""
    header = (f"{'group':<10} {'users':>6} {'mutual 1-sided':>15} {'mutual served':>14} {'change':>8} "
              f"{'NDCG 1-sided':>13} {'NDCG served':>12} {'change':>8}")
    lines = ["", f"Reciprocal ranking (weight {result['reciprocal_weight']}): mutual matches@10 per user (held-out "
             "items taken whose other side said yes) and NDCG@10, one-sided beside as served", header,
             "-" * len(header)]
    for name, part in ROWS[:1 + len(evaluation.ROLES)]:
        served, one_sided = _group(result["metrics"], name, part), _group(result["one_sided"], name, part)
        lines.append(
            f"{name:<10} {served['users']:>6} {_number(one_sided['mutual']):>15} {_number(served['mutual']):>14} "
            f"{_change(served['mutual'], one_sided['mutual']):>8} {_number(one_sided['ndcg']):>13} "
            f"{_number(served['ndcg']):>12} {_change(served['ndcg'], one_sided['ndcg']):>8}")
    return "\n".join(lines)


def _change(value: float | None, before: float | None) -> str:
    """The relative change from ``before`` to ``value``, as a signed percentage; "-" where undefined."""
    return "-" if value is None or not before else f"{(value - before) / before:+.1%}"


def _groups(result: dict):
    """(name, served, popularity, oracle) metrics of each table row; oracle is {} without one."""
    for name, part in ROWS:
        yield name, *(_group(result[ranking], name, part) for ranking in ("metrics", "popularity", "oracle"))


def _group(metrics: dict | None, name: str, part: str | None) -> dict:
    if metrics is None:
        return {}
    return metrics["all"] if part is None else metrics[part][name]


def ndcg_png(result: dict) -> bytes:
    """Bars of NDCG@10 per group: served, popularity and (on a demo world) the oracle. House style of
    recommendations/plots.py: a Figure (no pyplot state), saved with the Agg backend."""
    from io import BytesIO

    groups = list(_groups(result))
    rankings = [("served", 1, SERVED_COLOUR), ("popularity", 2, POPULARITY_COLOUR)]
    if result["oracle"] is not None:
        rankings.append(("oracle", 3, ORACLE_COLOUR))
    figure = Figure(figsize=(9, 3.6), dpi=100, layout="constrained")
    axes = figure.subplots()
    width = 0.8 / len(rankings)
    for n, (label, column, colour) in enumerate(rankings):
        heights = [(group[column].get("ndcg") or 0.0) for group in groups]
        axes.bar([i + n * width for i in range(len(groups))], heights, width, label=label, color=colour)
    axes.set_xticks([i + 0.4 - width / 2 for i in range(len(groups))],
                    [f"{name}\n({served['users']})" for name, served, _, _ in groups])
    axes.set_ylabel(f"NDCG@{evaluation.K}")
    axes.set_title("Recommendations as served, on each user's latest events held out (users per group)")
    axes.grid(axis="y", alpha=0.3)
    axes.legend()
    buffer = BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _number(value, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _weights(weights: dict) -> str:
    return ", ".join(f"{name} {w:.2f}" for name, w in weights.items()
                     if isinstance(w, float) and name in BLENDED and w > 0)
