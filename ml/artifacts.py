"""Reading a model version's saved files: what serving loads, and what activation checks first.

Every version's directory holds ``manifest.json``: the SHA-256 of each of its other files, written once the
version's last file is written (ml.training). Loading checks it first, so a flipped byte, a truncated
file, a file gone or one added since is refused before any of it is parsed, and names the file; a model
that loads is then refused if any of its weights is NaN or infinite (``Recommender.non_finite_parameters``).

Past one machine (``settings.MODEL_STORAGE``): the versions are kept in the model store, Django's
``storages["models"]`` — the local ``MODEL_DIR`` itself by default, an S3-compatible bucket with
``MODEL_STORAGE=s3``. ``MODEL_DIR`` stays where models are written (numpy and torch write files) and, with a
bucket, the local cache. :func:`publish` uploads a version's files under their names relative to
``MODEL_DIR`` (``<algorithm>/<version>/...``), the manifest last, so a reader that finds the manifest finds
every file it lists. Loading (:func:`load_version`, :func:`ensure_local`) uses the local copy when it
verifies, and otherwise downloads the version into a temporary directory, checks every file against the
store's manifest and only then renames it into place: a half-download never looks complete, and a file
damaged in the bucket is refused (ArtifactUnreadable, naming it) as a damaged local file is. A store that
cannot be reached raises its own error, not ArtifactUnreadable: serving keeps the models it holds and tries
again, rather than failing a sound version over.
"""
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import overload

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, storages

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
    _upload(directory, [name])


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
    if artifact_path and verify and _remote_store() is not None:
        artifact_path = str(ensure_local(Path(artifact_path)))
    elif not artifact_path or not Path(artifact_path).is_dir():
        raise ArtifactUnreadable(f"the {algorithm} artifact is missing (no directory {artifact_path!r})")
    elif verify:
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


# ---------------------------------------------------------------- the model store


def _remote_store():
    """``storages["models"]``, or None when it is a local directory (``MODEL_DIR`` itself, by default:
    nothing to publish or fetch; a directory shared by every machine is a ``MODEL_DIR`` they all mount).
    Read at every call: settings overridden (tests) or reconfigured reach the next publish or load."""
    store = storages["models"]
    return None if isinstance(store, FileSystemStorage) else store


def store_name(directory: Path) -> str:
    """Where ``directory``'s files are kept in the store: its path relative to ``MODEL_DIR``
    (``<algorithm>/<version>``, ``runs/<id>/holdout/...``); a version directory elsewhere (one recorded by
    a machine whose ``MODEL_DIR`` differs) by its last two parts, ``<algorithm>/<version>``."""
    directory = Path(directory)
    try:
        return directory.resolve().relative_to(Path(settings.MODEL_DIR).resolve()).as_posix()
    except ValueError:
        return Path(*directory.parts[-2:]).as_posix()


def publish(directory: Path) -> None:
    """Upload every file of ``directory`` (its manifest written) to the model store, the manifest last;
    nothing to do when the store is ``MODEL_DIR`` itself."""
    directory = Path(directory)
    _upload(directory, _artifact_files(directory))


def _upload(directory: Path, names: list[str]) -> None:
    store = _remote_store()
    if store is None:
        return
    prefix = store_name(directory)
    for name in [*names, MANIFEST_FILE]:
        with open(directory / name, "rb") as stream:
            saved = store.save(f"{prefix}/{name}", File(stream))
        if saved != f"{prefix}/{name}":
            raise RuntimeError(f"the model store saved {prefix}/{name} as {saved}: it must overwrite files "
                               "(S3Storage's file_overwrite, FileSystemStorage's allow_overwrite)")


def ensure_local(directory: Path) -> Path:
    """A verified local copy of the version (or held-out split) published from ``directory``: ``directory``
    itself when it verifies, else its copy in ``MODEL_DIR``'s cache, fetched from the store when missing or
    damaged. ArtifactUnreadable when the store's copy is missing or damaged too. With the local store,
    ``directory`` as it is (what loads it verifies it, as :func:`load_version` does)."""
    directory = Path(directory)
    store = _remote_store()
    if store is None:
        return directory
    name = store_name(directory)
    cache = Path(settings.MODEL_DIR) / name
    for candidate in dict.fromkeys([directory, cache]):
        if (candidate / MANIFEST_FILE).is_file():
            try:
                verify_manifest(candidate)
                return candidate
            except ArtifactUnreadable:
                pass
    _fetch(store, name, cache)
    return cache


def ensure_local_parts(directory: Path, names: list[str]) -> None:
    """:func:`ensure_local` for each of ``directory``'s subdirectories ``names`` that the store holds
    (a training run's held-out split and its models: ml.evaluation.latest_held_out)."""
    directory = Path(directory)
    if _remote_store() is None:
        return
    for name in names:
        if in_store(directory / name):
            ensure_local(directory / name)


def remove_from_store(directory: Path, *, keep: str) -> None:
    """Delete from the store every file under ``directory`` but those under its subdirectory ``keep``
    (earlier training runs' held-out splits)."""
    store = _remote_store()
    if store is None:
        return
    prefix = store_name(directory)
    folders, files = store.listdir(prefix)
    for name in files:
        store.delete(f"{prefix}/{name}")
    for folder in folders:
        if folder != keep:
            _delete_tree(store, f"{prefix}/{folder}")


def _delete_tree(store, prefix: str) -> None:
    folders, files = store.listdir(prefix)
    for name in files:
        store.delete(f"{prefix}/{name}")
    for folder in folders:
        _delete_tree(store, f"{prefix}/{folder}")


def in_store(directory: Path) -> bool:
    """Whether the store holds a manifest for ``directory`` (with the local store: whether it has one)."""
    store = _remote_store()
    if store is None:
        return (Path(directory) / MANIFEST_FILE).is_file()
    return store.exists(f"{store_name(directory)}/{MANIFEST_FILE}")


def _fetch(store, name: str, cache: Path) -> None:
    """Download ``name``'s manifest and the files it lists into a temporary directory beside ``cache``,
    each checked against the manifest's digest, then rename it into place."""
    manifest = _read(store, f"{name}/{MANIFEST_FILE}")
    try:
        expected = json.loads(manifest)["sha256"]
        if not isinstance(expected, dict):
            raise TypeError("sha256 is not an object")
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactUnreadable(f"{name}/{MANIFEST_FILE} in the model store is unreadable: {exc}") from exc
    cache.parent.mkdir(parents=True, exist_ok=True)
    download = Path(tempfile.mkdtemp(prefix=f".{cache.name}.download-", dir=cache.parent))
    try:
        for file, digest in sorted(expected.items()):
            if Path(file).is_absolute() or ".." in Path(file).parts:
                raise ArtifactUnreadable(f"{name}/{MANIFEST_FILE} in the model store lists {file!r}, "
                                         "outside the version's directory")
            target = download / file
            target.parent.mkdir(parents=True, exist_ok=True)
            _read(store, f"{name}/{file}", target)
            if file_digest(target) != digest:
                raise ArtifactUnreadable(f"{name}/{file} in the model store is damaged: "
                                         "its SHA-256 differs from the manifest's")
        (download / MANIFEST_FILE).write_bytes(manifest)
        _put_in_place(download, cache)
    finally:
        shutil.rmtree(download, ignore_errors=True)


def _put_in_place(download: Path, cache: Path) -> None:
    """Rename the verified ``download`` to ``cache``. A copy another process (of this machine) put there
    first is kept when it verifies — it may be loading from it; a damaged one is moved aside, then removed."""
    try:
        os.rename(download, cache)  # fails where cache is a directory with files in it
        return
    except OSError:
        if not cache.exists():
            raise
    try:
        verify_manifest(cache)
        return
    except ArtifactUnreadable:
        pass
    stale = Path(tempfile.mkdtemp(prefix=f".{cache.name}.stale-", dir=cache.parent))
    os.replace(cache, stale / cache.name)
    os.rename(download, cache)
    shutil.rmtree(stale, ignore_errors=True)


@overload
def _read(store, name: str) -> bytes: ...
@overload
def _read(store, name: str, target: Path) -> None: ...
def _read(store, name: str, target: Path | None = None) -> bytes | None:
    """The bytes of ``name`` in the store, or written to ``target``; ArtifactUnreadable when it is not
    there (a store that cannot be reached raises its own error: nothing is known to be wrong with the version)."""
    try:
        with store.open(name, "rb") as stream:
            if target is None:
                return stream.read()
            with open(target, "wb") as out:
                shutil.copyfileobj(stream, out, _CHUNK)
            return None
    except FileNotFoundError:
        raise ArtifactUnreadable(f"{name} is missing from the model store") from None
