"""Reading a model version's saved files: what serving loads, and what activation checks first."""
from pathlib import Path

from ml.core.base import Recommender
from ml.core.registry import load_component


class ArtifactUnreadable(Exception):
    """A model version's files cannot be loaded; the message says which and why."""


def load_version(algorithm: str, artifact_path: str) -> Recommender:
    """The fitted model in ``artifact_path``; ArtifactUnreadable when it is missing or corrupt."""
    if not artifact_path or not Path(artifact_path).is_dir():
        raise ArtifactUnreadable(f"the {algorithm} artifact is missing (no directory {artifact_path!r})")
    try:
        model = load_component(Path(artifact_path))
    except Exception as exc:  # a damaged file surfaces as zipfile, torch, json or key errors alike
        raise ArtifactUnreadable(f"the {algorithm} artifact in {artifact_path} cannot be loaded: "
                                 f"{type(exc).__name__}: {exc}") from exc
    if model.name != algorithm:
        raise ArtifactUnreadable(f"the artifact in {artifact_path} holds {model.name}, not {algorithm}")
    return model
