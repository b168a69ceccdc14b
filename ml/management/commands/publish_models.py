"""Upload every model version on this machine to the model store (``MODEL_STORAGE``): run it once where the
versions were trained when a deployment moves from one machine's ``MODEL_DIR`` to a bucket; training
publishes every version it saves from then on (ml.artifacts)."""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ml.artifacts import ArtifactUnreadable, publish, verify_manifest
from ml.models import ModelVersion


class Command(BaseCommand):
    help = ("Upload each model version whose files verify against its manifest to the model store "
            "(MODEL_STORAGE); without MODEL_STORAGE the store is MODEL_DIR and there is nothing to do.")

    def handle(self, *args, **options):
        refused = 0
        for version in ModelVersion.objects.exclude(artifact_path="").order_by("algorithm", "version"):
            path = Path(version.artifact_path)
            label = f"{version.algorithm} v{version.version}"
            if not path.is_dir():
                continue
            try:
                verify_manifest(path)
            except ArtifactUnreadable as exc:
                refused += 1
                self.stderr.write(f"{label}: not published: {exc}")
                continue
            publish(path)
            self.stdout.write(f"{label}: published")
        if refused:
            raise CommandError(f"{refused} version(s) could not be verified and were not published")
