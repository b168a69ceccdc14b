"""Reading a model version's saved files: what serving loads, and what activation checks first.

Every version's directory holds ``manifest.json``: the SHA-256 of each of its other files, written once the
version's last file is written (ml.training). Loading checks it first, so a flipped byte, a truncated
file, a file gone or one added since is refused before any of it is parsed, and names the file; a model
that loads is then refused if any of its weights is NaN or infinite (``Recommender.non_finite_parameters``).
"""
import hashlib
import json
import os
from pathlib import Path

from ml.core.base import Recommender
from ml.core.registry import load_component

MANIFEST_FILE = "manifest.json"
_CHUNK = 1 << 20


class ArtifactUnreadable(Exception):
    """A model version's files cannot be loaded; the message says which and why."""


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _artifact_files(directory: Path) -> list[str]:
    """Every file under ``directory`` but the manifest, as sorted paths relative to it."""
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*")
                  if p.is_file() and p.name != MANIFEST_FILE)


def write_manifest(directory: Path) -> dict[str, str]:
    """Record the digest of every file in ``directory``; call it after the version's last file is written.

    Written to a temporary name and renamed, so a crash leaves the old manifest or the new one, never half."""
    directory = Path(directory)
    files = {name: file_digest(directory / name) for name in _artifact_files(directory)}
    _write_atomically(directory / MANIFEST_FILE, json.dumps({"sha256": files}, indent=1, sort_keys=True))
    return files


def rewrite_file(directory: Path, name: str, text: str) -> None:
    """Replace one file of a verified artifact (its metrics, say) and its digest in the manifest: the other
    files are checked first, so rewriting the manifest never blesses a file damaged since it was saved."""
    directory = Path(directory)
    files = verify_manifest(directory)
    _write_atomically(directory / name, text)
    files[name] = file_digest(directory / name)
    _write_atomically(directory / MANIFEST_FILE, json.dumps({"sha256": files}, indent=1, sort_keys=True))


def verify_manifest(directory: Path) -> dict[str, str]:
    """The manifest's digests; ArtifactUnreadable naming the file when the manifest is missing or unreadable,
    a file is missing, one is there that it does not list, or one's digest differs."""
    directory = Path(directory)
    try:
        expected = json.loads((directory / MANIFEST_FILE).read_text())["sha256"]
        if not isinstance(expected, dict):
            raise TypeError("sha256 is not an object")
    except FileNotFoundError:
        raise ArtifactUnreadable(f"{directory / MANIFEST_FILE} is missing: the files cannot be verified "
                                 "(`manage.py write_manifests` vouches for versions saved before manifests)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactUnreadable(f"{directory / MANIFEST_FILE} is unreadable: {exc}") from exc
    present = set(_artifact_files(directory))
    for name in sorted(set(expected) - present):
        raise ArtifactUnreadable(f"{directory / name} is missing (the manifest lists it)")
    for name in sorted(present - set(expected)):
        raise ArtifactUnreadable(f"{directory / name} is not in the manifest (added after the version was saved)")
    for name in sorted(expected):
        if file_digest(directory / name) != expected[name]:
            raise ArtifactUnreadable(f"{directory / name} is damaged: its SHA-256 differs from the manifest's")
    return dict(expected)


def load_version(algorithm: str, artifact_path: str) -> Recommender:
    """The fitted model in ``artifact_path``, verified against its manifest and with finite weights;
    ArtifactUnreadable when it is missing, damaged or holds NaN or infinite weights."""
    return _load(algorithm, artifact_path, verify=True)


def load_version_without_manifest(algorithm: str, artifact_path: str) -> Recommender:
    """As :func:`load_version`, without a manifest to check: what vouching for a version saved before
    manifests loads (ml/management/commands/write_manifests.py). Its weights must be finite all the same."""
    return _load(algorithm, artifact_path, verify=False)


def _load(algorithm: str, artifact_path: str, *, verify: bool) -> Recommender:
    if not artifact_path or not Path(artifact_path).is_dir():
        raise ArtifactUnreadable(f"the {algorithm} artifact is missing (no directory {artifact_path!r})")
    if verify:
        verify_manifest(Path(artifact_path))
    try:
        model = load_component(Path(artifact_path))
    except Exception as exc:  # a damaged file surfaces as zipfile, torch, json or key errors alike
        raise ArtifactUnreadable(f"the {algorithm} artifact in {artifact_path} cannot be loaded: "
                                 f"{type(exc).__name__}: {exc}") from exc
    if model.name != algorithm:
        raise ArtifactUnreadable(f"the artifact in {artifact_path} holds {model.name}, not {algorithm}")
    non_finite = model.non_finite_parameters()
    if non_finite:
        raise ArtifactUnreadable(f"the {algorithm} artifact in {artifact_path} holds NaN or infinite weights "
                                 f"in {', '.join(non_finite)}")
    return model


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
