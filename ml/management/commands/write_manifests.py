"""Vouch for model versions saved before manifests: each whose files load, with finite weights, gets one.

Activation and serving refuse a version without ``manifest.json`` (ml.artifacts). Migration 0005 runs this
once for the versions on disk then; run it again after restoring such versions from a backup.
"""
from pathlib import Path

from django.core.management.base import BaseCommand

from ml.artifacts import MANIFEST_FILE, ArtifactUnreadable, load_version_without_manifest, publish, write_manifest
from ml.models import ModelVersion


def vouch_for_versions_without_manifest(versions) -> tuple[list[str], dict[str, str]]:
    """(versions given a manifest, {version: why it was refused}) among ``versions`` (rows with
    ``algorithm``, ``version`` and ``artifact_path``) whose directory has no manifest yet."""
    vouched, refused = [], {}
    for version in versions:
        path = Path(version.artifact_path)
        if not path.is_dir() or (path / MANIFEST_FILE).exists():
            continue
        label = f"{version.algorithm} v{version.version}"
        try:
            load_version_without_manifest(version.algorithm, str(path))
        except ArtifactUnreadable as exc:
            refused[label] = str(exc)
            continue
        write_manifest(path)
        publish(path)  # to the model store, where MODEL_STORAGE names one (ml.artifacts)
        vouched.append(label)
    return vouched, refused


class Command(BaseCommand):
    help = ("Write manifest.json for every model version saved without one whose files load with finite "
            "weights; the others stay unverifiable and are refused at activation and load.")

    def handle(self, *args, **options):
        vouched, refused = vouch_for_versions_without_manifest(ModelVersion.objects.exclude(artifact_path=""))
        for label in vouched:
            self.stdout.write(f"{label}: manifest written")
        for label, why in refused.items():
            self.stdout.write(self.style.WARNING(f"{label}: refused ({why})"))
        self.stdout.write(f"{len(vouched)} vouched for, {len(refused)} refused.")
