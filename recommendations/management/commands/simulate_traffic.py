"""Simulated days of demo users asking for recommendations and answering them (recommendations/simulation.py).

    python manage.py simulate_traffic --days 7 --users 100
    python manage.py simulate_traffic --days 5 --users 300 --experiment-weights '{"content_based": 1}'
"""
import json
from argparse import ArgumentTypeError

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from ml import evaluation
from recommendations import experiments, simulation
from recsys_site.exceptions import DomainError


class Command(BaseCommand):
    help = ("Simulate days of demo users asking for recommendations through the API and answering them as the "
            "demo world's hidden tastes say: impressions, attributed events, and an experiment's results.")

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=7, help="simulated days, the last one today (default 7)")
        parser.add_argument("--users", type=int, default=100,
                            help="demo users sampled, the same every day (default 100)")
        parser.add_argument("--seed", type=int, default=0, help="the simulation's seed (default 0)")
        parser.add_argument("--demo-seed", type=int, default=evaluation.DEMO_SEED,
                            help="the seed_demo --seed of the demo world (default %(default)s)")
        parser.add_argument("--experiment-weights", type=_weights,
                            help='JSON weights of a variant to test against what is in force, e.g. '
                                 '\'{"content_based": 1}\'; a running experiment is used instead if there is one')
        parser.add_argument("--experiment-name", help='the new experiment\'s name (default "simulated: <weights>")')

    def handle(self, *args, days, users, seed, demo_seed, experiment_weights, experiment_name, **options):
        if experiment_name and experiment_weights is None:
            raise CommandError("--experiment-name names the experiment of --experiment-weights; give both.")
        try:
            report = simulation.traffic_simulate(days=days, users=users, seed=seed, demo_seed=demo_seed,
                                                 experiment_weights=experiment_weights,
                                                 experiment_name=experiment_name, progress=self._day)
        except DomainError as exc:
            raise CommandError(exc.detail) from None
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(self.style.SUCCESS(f"Simulated {days} days of {report.users} users: {_tally(report.total)}"))
        self.stdout.write(f"Accepted by the other side: {_accepted(report.total)}")
        for variant, tally in sorted(report.by_variant.items()):
            self.stdout.write(f"  {variant}: {_accepted(tally)}")
        if report.experiment is not None:
            self._results(experiments.experiment_results(experiment=report.experiment))

    def _results(self, results: dict) -> None:
        """Each group's rates, each variant's difference from the control on the experiment's metric, the winner."""
        experiment, metric = results["experiment"], results["experiment"]["metric"]
        self.stdout.write(f"Experiment {experiment['name']!r} (id {experiment['id']}, {experiment['status']}), "
                          f"decided on {metric.replace('_', ' ')}; all its traffic so far:")
        for group in (results["control"], *results["variants"]):
            rates = ", ".join(f"{name.replace('_', ' ')} {_percent(group['rates'][name])}"
                              for name, _ in simulation.RATES)
            line = f"  {group['name']}: {group['users']} users, {group['impressions']} impressions; {rates}"
            compared = group.get("difference_vs_control", {}).get(metric)
            if compared:
                low, high = compared["interval"]
                line += (f"; {metric.replace('_', ' ')} {compared['difference']:+.2%} vs control "
                         f"[{low:+.2%}, {high:+.2%}], p = {compared['p_value']:.3g}")
            self.stdout.write(line)
        winner = results["winner"]
        self.stdout.write(self.style.SUCCESS(f"Winner at p < {results['alpha']}: {winner}") if winner
                          else f"No winner at p < {results['alpha']} yet.")

    def _day(self, day: simulation.DayReport) -> None:
        self.stdout.write(f"day {day.day}/{day.days} ({day.date}): {day.users} users, {day.tally.impressions} "
                          f"impressions, {day.tally.events} events, {day.tally.accepted} of {day.tally.asked} "
                          "applications and contacts accepted")


def _weights(text: str) -> dict:
    try:
        weights = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(weights, dict):
        raise ArgumentTypeError('a JSON object of weights is expected, e.g. {"content_based": 1}')
    return weights


def _accepted(tally: simulation.Tally) -> str:
    return (f"{tally.accepted} of {tally.asked} applications and contacts"
            + (f" ({tally.acceptance_rate:.1%})" if tally.asked else ""))


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.2%}"


def _tally(tally: simulation.Tally) -> str:
    rates = ", ".join(f"{name.replace('_', ' ')} {tally.rate(outcome):.2%}" for name, outcome in simulation.RATES)
    return f"{tally.impressions} impressions, {tally.items_shown} items shown; {rates}"
