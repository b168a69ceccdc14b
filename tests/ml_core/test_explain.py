"""Explanations: each anchored component's anchor is the history item it finds most similar to the item,
in its own item space, whichever numbering it is addressed in; components are ordered by contribution;
the sentences say what the user did."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from ml.core import explain
from ml.core.collaborative import CollaborativeRecommender, EaseRecommender, RP3BetaRecommender
from ml.core.data import IdMap
from ml.core.ranker import AlignedComponent, Ranking

from .conftest import group_of_item, own_items

# A tiny item space whose nearest neighbours are plain to see: items 0 and 1 point along the axes,
# 2 leans to 0, 3 leans to 1, 4 points away from both.
VECTORS = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.2], [0.1, 0.8], [-1.0, -1.0]], dtype=np.float32)


def als_with(vectors: np.ndarray, ids: list[str] | None = None) -> CollaborativeRecommender:
    model = CollaborativeRecommender()
    model.item_factors = vectors
    model.item_ids = IdMap(ids or [f"i{n}" for n in range(len(vectors))])
    return model


def test_the_anchor_of_an_item_is_the_most_similar_history_item():
    anchors = explain.anchors(als_with(VECTORS), np.array([0, 1]), np.array([2, 3]))
    assert anchors.tolist() == [0, 1]


def test_an_item_no_history_item_points_towards_has_no_anchor():
    assert explain.anchors(als_with(VECTORS), np.array([0, 1]), np.array([4])).tolist() == [-1]


def test_an_item_is_not_its_own_anchor():
    # Item 0 is in the history (seen items may be shown); its nearest other history item is 2.
    assert explain.anchors(als_with(VECTORS), np.array([0, 2]), np.array([0])).tolist() == [2]


def test_no_history_means_no_anchors():
    assert explain.anchors(als_with(VECTORS), np.array([], dtype=np.int64), np.array([2, 3])).tolist() == [-1, -1]


def test_the_two_towers_anchor_is_nearest_by_its_item_embeddings():
    from ml.core.train import TwoTowerRecommender

    model = TwoTowerRecommender()
    model.item_embeddings = VECTORS
    assert explain.anchors(model, np.array([0, 1]), np.array([3, 2])).tolist() == [1, 0]


@pytest.mark.parametrize("model_class", [EaseRecommender, RP3BetaRecommender])
@pytest.mark.parametrize("sparse", [False, True])
def test_an_item_item_models_anchor_is_the_history_item_with_the_largest_weight_to_it(model_class, sparse):
    weights = np.zeros((4, 4), dtype=np.float32)
    weights[0, 2], weights[1, 2] = 0.2, 0.7  # item 2 owes most of its score to item 1
    weights[0, 3], weights[1, 3] = 0.5, -0.4
    model = model_class()
    model.weights = sp.csr_matrix(weights) if sparse else weights
    assert explain.anchors(model, np.array([0, 1]), np.array([2, 3])).tolist() == [1, 0]


def test_anchors_of_an_aligned_component_are_in_the_reference_rows():
    # The component knows items c, a, b (its rows 0, 1, 2); the reference numbers a, b, c, d, and d is new.
    own = als_with(np.array([[0.0, 1.0], [1.0, 0.0], [0.9, 0.1]], dtype=np.float32), ["c", "a", "b"])
    own.user_ids = IdMap(["u"])
    aligned = AlignedComponent(own, IdMap(["u"]), IdMap(["a", "b", "c", "d"]))

    anchors = explain.anchors(aligned, np.array([0, 2]), np.array([1, 3]))
    assert anchors.tolist() == [0, -1]  # b leans to a; d the component never saw, so it explains nothing


def test_anchors_of_an_aligned_item_item_model_read_its_own_weights():
    weights = np.zeros((3, 3), dtype=np.float32)
    weights[2, 0] = 0.8  # own rows: c=0, a=1, b=2; c owes its score to b
    model = EaseRecommender()
    model.weights, model.item_ids, model.user_ids = weights, IdMap(["c", "a", "b"]), IdMap(["u"])
    aligned = AlignedComponent(model, IdMap(["u"]), IdMap(["a", "b", "c"]))

    assert explain.anchors(aligned, np.array([0, 1]), np.array([2])).tolist() == [1]


def test_a_fitted_collaborative_model_anchors_items_in_their_own_group(world):
    model = CollaborativeRecommender(seed=0).fit(world)
    history = world.matrix[0].indices
    unseen = np.setdiff1d(own_items(0), history)
    anchors = explain.anchors(model, history, unseen)

    assert set(anchors.tolist()) <= set(history.tolist())
    assert all(group_of_item(a) == group_of_item(i) for a, i in zip(anchors, unseen, strict=True))
    cosine = explain.link_strengths(model, history, unseen)
    assert anchors.tolist() == history[np.argmax(cosine, axis=0)].tolist()


def test_content_is_not_explained_by_anchors():
    assert not explain.anchored("content_based") and not explain.anchored("popularity")
    assert all(explain.anchored(name) for name in ("collaborative", "two_tower", "ease", "rp3beta"))


def test_components_are_ordered_by_weight_times_z_score():
    ranking = Ranking(np.array([7, 8]), np.zeros(2), {"content_based": np.array([1.0, 0.1]),
                                                      "collaborative": np.array([2.0, 3.0]),
                                                      "two_tower": np.array([-1.0, 0.5])},
                      "none", {"content_based": 0.6, "collaborative": 0.2, "two_tower": 0.2})
    assert explain.by_contribution(ranking, 0) == ["content_based", "collaborative", "two_tower"]
    assert explain.by_contribution(ranking, 1) == ["collaborative", "two_tower", "content_based"]


@pytest.mark.parametrize(("name", "kind", "text"), [
    ("collaborative", "apply", "People who applied to Backend Engineer at Nova Pulse also applied here"),
    ("ease", "save", "People who saved Backend Engineer at Nova Pulse also saved this one"),
    ("rp3beta", "invest_interest",
     "People who showed investment interest in Backend Engineer at Nova Pulse also showed interest here"),
    ("two_tower", "save", "Like Backend Engineer at Nova Pulse, which you saved"),
    ("two_tower", "invest_interest", "Like Backend Engineer at Nova Pulse, which you showed investment interest in"),
])
def test_reasons_say_what_the_user_did_with_the_anchor(name, kind, text):
    assert explain.anchored_text(name, "Backend Engineer at Nova Pulse", kind) == text


def test_every_positive_kind_has_words():
    from ml.core.data import KIND_WEIGHTS

    assert set(explain.KIND_PHRASES) == set(KIND_WEIGHTS)


def test_the_popular_reason_claims_no_period():
    assert explain.popular_text("developers") == "Popular with developers"


def test_it_imports_without_django():
    code = ("import sys, ml.core.explain\n"
            "assert not [m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework')]")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_a_two_sided_reason_names_what_each_side_brings():
    shared = {"skill": ["django", "postgresql"], "industry": ["fintech"]}
    assert explain.two_sided_text("founder", shared) == ("You need django, postgresql; they list django, postgresql "
                                                         "and prefer fintech, your industry")
    assert explain.two_sided_text("founder", {"industry": ["fintech"], "stage": ["seed"]}) == (
        "They prefer fintech, your industry and invest at seed, your stage")
    assert explain.two_sided_text("developer", shared) == ("Its founders look for django, postgresql, which you "
                                                           "list and work in fintech, your industry")
    assert explain.two_sided_text("developer", {"remote": ["remote"]}) is None  # nothing the reader can check
