"""Train the recommenders now, in this process, showing progress (used by `make demo`)."""
from django.core.management.base import BaseCommand, CommandError

from ml import training
from ml.models import Algorithm, ModelVersion, Trigger
from recsys_site.exceptions import DomainError


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
        self.stdout.write(f"Training run {run.pk}: {', '.join(run.algorithms)}")
        run = training.training_run_execute(run_id=run.pk, algorithms=run.algorithms, progress=self._show)
        for algorithm, reason in run.skipped.items():
            self.stdout.write(self.style.WARNING(f"  {algorithm}: skipped ({reason})"))
        for version in ModelVersion.objects.filter(training_run=run):
            self.stdout.write(f"  {version.algorithm} v{version.version}: {version.status}, served alone NDCG@10 "
                              f"{_shown(version.metrics.get('ndcg'))}, {version.training_seconds}s on "
                              f"{version.device}, peak memory {version.peak_memory_mb} MB")
        if run.status == "failed":
            raise CommandError(f"Training run {run.pk} failed: {run.error}")
        self._summary(run)
        self.stdout.write(self.style.SUCCESS(f"Training run {run.pk} {run.status}."))

    def _summary(self, run) -> None:
        if run.tuned:
            weights = ", ".join(f"{name} {w:.2f}" for name, w in run.tuned["weights"].items() if w > 0)
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
        if event == "epoch":
            self.stdout.write(f"  {algorithm} epoch {info.get('epoch')}/{info.get('epochs')}: "
                              f"train loss {info.get('train_loss', float('nan')):.4f}, "
                              f"validation loss {info.get('val_loss', float('nan')):.4f}")
        elif event == "tuning":
            self.stdout.write(f"Tuning {', '.join(info['algorithms'])} on the {info['split']} split")
        elif event == "component":
            self.stdout.write(f"  {algorithm}: setting chosen in {info['seconds']}s" + ("" if info["ok"] else
                                                                                       " (it failed)"))
        elif event == "weights":
            weights = ", ".join(f"{name} {w:.2f}" for name, w in info.items() if isinstance(w, float) and
                                name != "validation_ndcg" and w > 0)
            self.stdout.write(f"  weights: {weights} (validation NDCG {info['validation_ndcg']:.4f})")
        elif event == "evaluating":
            self.stdout.write(f"Measuring the set as served on {info['users']} held-out users")


def _shown(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"
