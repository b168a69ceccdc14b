"""Train the recommenders now, in this process, showing progress (used by `make demo`).

Each phase of the run is named as it begins and timed as it ends (ml.progress.PHASES); inside it, each
algorithm says what it is doing: the settings compared and their validation NDCG, the Two-Tower's epochs
with their learning rate, the final fits with their time and the process's peak memory. The run's total
time closes the output.
"""
import time

from django.core.management.base import BaseCommand, CommandError

from ml import training
from ml.models import Algorithm, ModelVersion, Trigger, algorithm_label
from recsys_site.exceptions import DomainError

INDENT = "    "


class Command(BaseCommand):
    help = ("Train every algorithm (or --algorithms a,b) on the current data: settings and weights tuned on "
            "validation, the set measured as served and activated unless worse.")

    def add_arguments(self, parser):
        parser.add_argument("--algorithms", default=",".join(Algorithm.values),
                            help=f"comma-separated subset of {', '.join(Algorithm.values)}")
        parser.add_argument("--force", action="store_true", help="train even if nothing changed")

    def handle(self, *args, algorithms: str, force: bool, **options):
        names = [a.strip() for a in algorithms.split(",") if a.strip()]
        try:
            run = training.training_run_create(algorithms=names, force_retrain=force, trigger=Trigger.COMMAND)
        except DomainError as exc:
            raise CommandError(exc.detail) from None
        if run is None:
            self.stdout.write("Models are up to date with the data; nothing to train (use --force to retrain).")
            return
        self.stdout.write(f"Training run {run.pk}: {', '.join(algorithm_label(a) for a in run.algorithms)}")
        started = time.perf_counter()
        run = training.training_run_execute(run_id=run.pk, algorithms=run.algorithms, progress=self._show)
        seconds = time.perf_counter() - started
        for algorithm, reason in run.skipped.items():
            self.stdout.write(self.style.WARNING(f"  {algorithm_label(algorithm)}: skipped ({reason})"))
        versions = ModelVersion.objects.filter(training_run=run)
        if versions:
            self.stdout.write("Versions (the final fit's time and the process's peak resident memory meanwhile):")
        for version in versions:
            self.stdout.write(f"  {version.label}: {version.status}, served alone NDCG@10 "
                              f"{_shown(version.metrics.get('ndcg'))}, fitted in {version.training_seconds or 0:.2f} "
                              f"s on {version.device}, peak memory {version.peak_memory_mb} MB")
        if run.status == "failed":
            raise CommandError(f"Training run {run.pk} failed after {seconds:.1f} s: {run.error}")
        self._summary(run)
        self.stdout.write(self.style.SUCCESS(f"Training run {run.pk} {run.status} in {seconds:.1f} s."))

    def _summary(self, run) -> None:
        if run.tuned:
            weights = ", ".join(f"{algorithm_label(name)} {w:.2f}" for name, w in run.tuned["weights"].items()
                                if w > 0)
            self.stdout.write(f"  tuned weights: {weights} (validation NDCG@{run.tuned['k']} "
                              f"{_shown(run.tuned['validation_ndcg'])})")
        if run.served:
            served, popularity = run.served["metrics"]["all"], run.served["popularity"]["all"]
            oracle = (run.served["oracle"] or {}).get("all", {})
            self.stdout.write(f"  served NDCG@10 {_shown(served['ndcg'])} (popularity {_shown(popularity['ndcg'])}, "
                              f"oracle {_shown(oracle.get('ndcg'))}) on {served['users']} held-out users")
        if run.not_activated:
            self.stdout.write(self.style.WARNING(f"  not activated: {run.not_activated}"))

    def _show(self, algorithm: str, event: str, info: dict) -> None:
        name = algorithm_label(algorithm)
        line = None
        if event == "phase":
            number = f"[{info['number']}/{info['of']}] " if info.get("number") else ""
            self.stdout.write(self.style.MIGRATE_HEADING(f"{number}{info['label']}") + f" ({info['note']})")
        elif event == "phase_done":
            line = f"done in {info['seconds']:.1f} s"
        elif event == "epoch":
            line = (f"{name} epoch {info.get('epoch')}/{info.get('epochs')}: "
                    f"train loss {_loss(info.get('train_loss'))}, validation loss {_loss(info.get('val_loss'))}, "
                    f"learning rate {info.get('lr', float('nan')):.2g}"
                    + (" (best so far)" if info.get("best_epoch") == info.get("epoch") else ""))
        elif event == "setting":
            line = (f"{name} setting {info.get('setting')}/{info.get('settings')}: validation NDCG@20 "
                    f"{_shown(info.get('validation_ndcg'))}")
        elif event == "component":
            line = f"{name}: setting chosen in {info['seconds']:.2f} s" + ("" if info["ok"] else " (it failed)")
        elif event == "fitted":
            line = (f"{name}: fitted in {info['seconds']:.2f} s on {info['device'] or 'cpu'}, "
                    f"peak memory {info['peak_memory_mb']} MB")
        elif event == "weights":
            weights = ", ".join(f"{algorithm_label(n)} {w:.2f}" for n, w in info.items()
                                if isinstance(w, float) and n != "validation_ndcg" and w > 0)
            line = f"weights: {weights} (validation NDCG@20 {info['validation_ndcg']:.4f})"
        elif event == "evaluating":
            line = f"ranking {info['users']} held-out users as the API serves them"
        elif event == "activation":
            line = "activated" if info["activated"] else f"not activated: {info['why_not']}"
        if line:
            self.stdout.write(INDENT + line)


def _loss(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _shown(value) -> str:
    return "n/a" if value is None or value != value else f"{value:.4f}"
