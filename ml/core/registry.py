"""The component registry: algorithm name -> recommender class, and artifacts loaded by their own metadata.

Classes are imported on first use, so that naming an algorithm does not import PyTorch.
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path

from .base import META_FILE, Recommender
from .data import EngineError

CONTENT, COLLABORATIVE, TWO_TOWER, EASE, RP3BETA, POPULARITY = (
    "content_based", "collaborative", "two_tower", "ease", "rp3beta", "popularity")
COMPONENTS: dict[str, str] = {
    CONTENT: "ml.core.content:ContentRecommender",
    COLLABORATIVE: "ml.core.collaborative:CollaborativeRecommender",
    TWO_TOWER: "ml.core.train:TwoTowerRecommender",
    EASE: "ml.core.collaborative:EaseRecommender",
    RP3BETA: "ml.core.collaborative:RP3BetaRecommender",
    POPULARITY: "ml.core.collaborative:PopularityRecommender",
}


def component_class(name: str) -> type[Recommender]:
    if name not in COMPONENTS:
        raise EngineError(f"unknown algorithm {name!r}; known: {sorted(COMPONENTS)}")
    module, _, cls = COMPONENTS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def load_component(path: Path) -> Recommender:
    """The fitted component saved in the directory ``path``, of the class its ``meta.json`` names."""
    path = Path(path)
    try:
        algorithm = json.loads((path / META_FILE).read_text())["algorithm"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EngineError(f"cannot read the model artifact in {path}: {exc}") from exc
    return component_class(algorithm).load(path)

# The blend's weights until a training tunes them (and what staff start from).
DEFAULT_WEIGHTS = {CONTENT: 0.4, COLLABORATIVE: 0.35, TWO_TOWER: 0.25}
