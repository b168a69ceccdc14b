"""Similar items: each component's item-to-item similarity in its own space, whichever numbering it is
addressed in; the blend of their z-scores with the weights over the components that know each item; the
item itself never among its similar ones; content reasons name the terms two items share."""
import numpy as np
import pytest
import scipy.sparse as sp

from ml.core import similar
from ml.core.collaborative import CollaborativeRecommender, EaseRecommender, RP3BetaRecommender
from ml.core.content import ContentRecommender
from ml.core.data import EngineError, IdMap
from ml.core.ranker import AlignedComponent

from .conftest import HALF_ITEMS, N_ITEMS, group_of_item

VECTORS = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.2], [0.1, 0.8], [-1.0, -1.0]], dtype=np.float32)


def als_with(vectors: np.ndarray, ids: list[str] | None = None) -> CollaborativeRecommender:
    model = CollaborativeRecommender()
    model.item_factors = vectors
    model.item_ids = IdMap(ids or [f"i{n}" for n in range(len(vectors))])
    return model


def ease_with(weights) -> EaseRecommender:
    model = EaseRecommender()
    model.weights = weights
    model.item_ids = IdMap([f"i{n}" for n in range(weights.shape[0])])
    return model


@pytest.fixture(scope="module")
def fitted(world):
    return {"content_based": ContentRecommender().fit(world), "collaborative": CollaborativeRecommender().fit(world),
            "ease": EaseRecommender().fit(world), "rp3beta": RP3BetaRecommender().fit(world)}


@pytest.mark.parametrize("name", ["content_based", "collaborative", "ease", "rp3beta"])
def test_every_component_finds_an_items_own_group_most_similar(fitted, name):
    found = similar.similar_items({name: fitted[name]}, {name: 1.0}, 0, np.arange(N_ITEMS), HALF_ITEMS - 1)

    assert 0 not in found.items.tolist()
    assert {group_of_item(int(row)) for row in found.items} == {0}, name
    assert found.weights == {name: 1.0}


def test_the_blend_ranks_the_own_group_first_and_reports_each_components_similarity(fitted):
    weights = {"content_based": 0.4, "collaborative": 0.35, "ease": 0.25, "popularity": 0.5}
    found = similar.similar_items(fitted, weights, 30, np.arange(N_ITEMS), 10)

    assert all(group_of_item(int(row)) == 1 for row in found.items)
    assert 30 not in found.items.tolist()
    assert found.weights == pytest.approx({"content_based": 0.4, "collaborative": 0.35, "ease": 0.25})  # no prior
    assert list(found.scores) == sorted(found.scores, reverse=True)
    expected = similar.similarities(fitted["collaborative"], 30, found.items)
    assert found.similarities["collaborative"] == pytest.approx(expected)
    n = 0
    contributions = [found.weights[c] * found.z[c][n] for c in found.by_contribution(n)]
    assert contributions == sorted(contributions, reverse=True)


def test_only_the_candidates_are_ranked(fitted):
    candidates = np.array([1, 2, 30, 31, 32])
    found = similar.similar_items(fitted, {"content_based": 1.0}, 0, candidates, 10)

    assert sorted(found.items.tolist()) == [1, 2, 30, 31, 32]
    assert found.items[:2].tolist() in ([1, 2], [2, 1])


def test_cosine_of_item_vectors_and_item_item_weights_from_the_item():
    assert similar.similarities(als_with(VECTORS), 0, np.array([2, 1, 4])) == pytest.approx(
        [0.9 / np.hypot(0.9, 0.2), 0.0, -1 / np.sqrt(2)])
    weights = np.zeros((3, 3), dtype=np.float32)
    weights[0, 1], weights[1, 0], weights[0, 2] = 0.3, 0.9, 0.1  # read from the item's row, not its column
    for form in (weights, sp.csr_matrix(weights)):
        assert similar.similarities(ease_with(form), 0, np.array([1, 2])) == pytest.approx([0.3, 0.1])


def test_an_aligned_component_reads_its_own_rows_and_knows_nothing_of_new_items():
    # The component knows c, a, b (its rows 0, 1, 2); the reference numbers a, b, c, d, and d is new.
    own = als_with(np.array([[0.0, 1.0], [1.0, 0.0], [0.9, 0.1]], dtype=np.float32), ["c", "a", "b"])
    own.user_ids = IdMap(["u"])
    aligned = AlignedComponent(own, IdMap(["u"]), IdMap(["a", "b", "c", "d"]))

    values = similar.similarities(aligned, 0, np.array([1, 2, 3]))
    assert values[:2] == pytest.approx([0.9 / np.hypot(0.9, 0.1), 0.0])
    assert np.isnan(values[2])
    assert np.isnan(similar.similarities(aligned, 3, np.array([0, 1]))).all()


def test_an_item_a_component_never_saw_is_rated_by_the_others_alone():
    content = ContentRecommender()  # the reference: it knows the new item d
    content.item_vectors = sp.csr_matrix(np.array([[1, 0], [1, 0], [0, 1], [1, 0.1]], dtype=np.float32))
    content.item_ids = IdMap(["a", "b", "c", "d"])
    collaborative = als_with(np.array([[1, 0], [0, 1], [1, 0]], dtype=np.float32), ["a", "b", "c"])
    collaborative.user_ids = IdMap(["u"])
    aligned = AlignedComponent(collaborative, IdMap(["u"]), IdMap(["a", "b", "c", "d"]))

    found = similar.similar_items({"content_based": content, "collaborative": aligned},
                                  {"content_based": 0.5, "collaborative": 0.5}, 0, np.arange(4), 3)

    at = found.items.tolist().index(3)
    assert np.isnan(found.similarities["collaborative"][at]) and found.z["collaborative"][at] == 0
    assert found.scores[at] == pytest.approx(found.z["content_based"][at])  # content's opinion, not halved
    assert found.by_contribution(at) == ["content_based"]


def test_an_item_no_component_knows_is_refused():
    own = als_with(VECTORS[:2], ["a", "b"])
    own.user_ids = IdMap(["u"])
    aligned = AlignedComponent(own, IdMap(["u"]), IdMap(["a", "b", "new"]))
    with pytest.raises(EngineError, match="no similarity component knows"):
        similar.similar_items({"collaborative": aligned}, {"collaborative": 1.0}, 2, np.arange(3), 5)


def test_weights_for_no_serving_similarity_component_fall_back_to_the_defaults_then_to_all():
    components = {"collaborative": als_with(VECTORS), "ease": ease_with(np.eye(5, dtype=np.float32))}
    assert similar.blended_components(components, {"popularity": 1.0, "two_tower": 1.0}) == {"collaborative": 0.35}
    assert similar.blended_components({"ease": components["ease"]}, {"popularity": 1.0}) == {"ease": 1.0}


def test_an_item_alone_in_its_candidates_has_no_similar_items():
    found = similar.similar_items({"collaborative": als_with(VECTORS)}, {"collaborative": 1.0}, 0, np.array([0]), 5)
    assert len(found.items) == 0


def test_shared_terms_name_what_two_items_have_in_common():
    content = ContentRecommender()
    content.vocab = ["skill:django", "skill:python", "industry:fintech", "text:api", "skill:go"]
    content.item_vectors = sp.csr_matrix(np.array([[1, 1, 1, 1, 0], [1, 1, 0, 1, 0], [0, 0, 0, 1, 1]],
                                                  dtype=np.float32))

    shared = similar.shared_terms(content, 0, np.array([1, 2]))

    assert shared == [{"skill": ["django", "python"], "text": ["api"]}, {"text": ["api"]}]
    assert similar.shared_text(shared[0]) == "Shares django, python"  # words only when nothing more telling
    assert similar.shared_text(shared[1]) == "Shares api"
    assert similar.shared_text({"skill": ["a", "b", "c", "d"], "industry": ["fintech"]}) == (
        "Shares a, b, c, ...; industry: fintech")
    assert similar.shared_text({}) is None
