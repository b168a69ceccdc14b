"""Train the recommenders now, in this process, showing progress (used by `make demo`)."""
from django.core.management.base import BaseCommand, CommandError

from ml import training
from ml.models import Algorithm, ModelVersion, Trigger
from recsys_site.exceptions import DomainError


class Command(BaseCommand):
    help = "Train every algorithm (or --algorithms a,b) on the current data and activate the results."

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
        run = training.training_run_execute(run_id=run.pk, algorithms=run.algorithms,
                                            progress=self._show)
        for algorithm, reason in run.skipped.items():
            self.stdout.write(self.style.WARNING(f"  {algorithm}: skipped ({reason})"))
        for version in ModelVersion.objects.filter(training_run=run):
            ndcg = version.metrics.get("ndcg")
            shown = "n/a" if ndcg is None else f"{ndcg:.4f}"
            self.stdout.write(f"  {version.algorithm} v{version.version}: {version.status}, held-out NDCG@10 "
                              f"{shown}, {version.training_seconds}s on {version.device}")
        if run.status == "failed":
            raise CommandError(f"Training run {run.pk} failed: {run.error}")
        self.stdout.write(self.style.SUCCESS(f"Training run {run.pk} {run.status}."))

    def _show(self, algorithm: str, event: str, info: dict) -> None:
        if event == "epoch":
            self.stdout.write(f"  {algorithm} epoch {info.get('epoch')}/{info.get('epochs')}: "
                              f"train loss {info.get('train_loss', float('nan')):.4f}, "
                              f"validation loss {info.get('val_loss', float('nan')):.4f}")
