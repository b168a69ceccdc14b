"""ml.core.serving without a database: the content vocabulary rebuilt from an artifact, components from
different snapshots aligned by outside id, and the serving hybrid's filters and fallbacks."""
import numpy as np
import pytest
import scipy.sparse as sp

from ml.core.collaborative import ALSConfig, CollaborativeRecommender
from ml.core.content import ContentRecommender
from ml.core.data import EngineError, IdMap, InteractionData
from ml.core.features import platform_content, platform_user_terms
from ml.core.serving import AlignedComponent, ServingHybrid, align, content_vocabulary

USERS = [
    {"role": "developer", "skills": ["python", "django"], "industries": ["fintech"], "remote_preference": "remote",
     "salary_min": 120000, "salary_max": 120000, "headline": "Backend engineer"},
    {"role": "developer", "skills": ["react"], "industries": ["health"], "headline": "Frontend"},
    {"role": "developer", "skills": ["rust", "kafka"], "industries": [], "headline": "Systems"},
]
ITEMS = [
    {"item_type": "position", "title": "Django developer", "required_skills": ["python", "django"],
     "industries": ["fintech"], "remote": "remote", "salary_min": 100000, "salary_max": 140000},
    {"item_type": "position", "title": "React developer", "required_skills": ["react", "typescript"],
     "industries": ["health"], "remote": "onsite"},
    {"item_type": "startup", "title": "Payments", "required_skills": ["python"], "industries": ["fintech"],
     "stage": "seed"},
    {"item_type": "startup", "title": "Clinic app", "required_skills": ["react"], "industries": ["health"],
     "stage": "idea"},
]


def platform_world(matrix: np.ndarray, items: list[dict] = ITEMS, item_ids=None) -> InteractionData:
    user_content, item_content, vocabulary = platform_content(USERS, items)
    return InteractionData(
        user_ids=IdMap([str(n + 1) for n in range(len(USERS))]),
        item_ids=IdMap(item_ids or [f"{item['item_type']}:{n + 1}" for n, item in enumerate(items)]),
        matrix=sp.csr_matrix(matrix, dtype=np.float32), user_content=user_content, item_content=item_content,
        content_vocab=list(vocabulary.terms))


HISTORY = np.asarray([[1, 0, 2, 0], [0, 4, 0, 1], [0, 0, 0, 0]])


def test_the_rebuilt_vocabulary_encodes_users_exactly_as_training_did():
    data = platform_world(HISTORY)
    _, _, trained_vocabulary = platform_content(USERS, ITEMS)
    content = ContentRecommender().fit(data)

    rebuilt = content_vocabulary(content)
    assert rebuilt.terms == trained_vocabulary.terms
    np.testing.assert_allclose(rebuilt.idf, trained_vocabulary.idf, rtol=1e-6)
    encoded = rebuilt.transform([platform_user_terms(user) for user in USERS])
    np.testing.assert_allclose(encoded.toarray(), data.user_content.toarray(), atol=1e-6)


def collaborative(data: InteractionData) -> CollaborativeRecommender:
    return CollaborativeRecommender(ALSConfig(factors=4, iterations=5, regularization=0.1)).fit(data)


def test_a_component_from_another_snapshot_answers_in_the_reference_numbering():
    model = collaborative(platform_world(HISTORY))
    # Today's catalog: the same items in another order, plus one the model never saw.
    reference = IdMap(["startup:4", "position:1", "startup:3", "position:9", "position:2"])
    aligned = AlignedComponent(model, IdMap(["3", "1", "2", "42"]), reference)

    own = model.score(np.asarray([0]))[0]  # user "1" in the model's rows
    scores = aligned.score([1])[0]
    np.testing.assert_allclose(scores[[1, 4, 2, 0]], own[[0, 1, 2, 3]], rtol=1e-6)
    assert scores[3] == pytest.approx(own.mean())  # the new item: no opinion

    history = sp.csr_matrix(([4.0], ([0], [4])), shape=(1, 5))  # applied to position:2, in reference rows
    expected = model.fold_in(sp.csr_matrix(([4.0], ([0], [1])), shape=(1, 4)))
    np.testing.assert_allclose(aligned.fold_in(history)[[1, 4, 2, 0]], expected, rtol=1e-5)


def test_a_user_the_component_never_saw_is_an_engine_error():
    aligned = AlignedComponent(collaborative(platform_world(HISTORY)), IdMap(["1", "42"]), IdMap(["position:1"]))
    with pytest.raises(EngineError, match="before this user existed"):
        aligned.score([1])


def test_a_component_of_the_same_snapshot_is_used_as_it_is():
    data = platform_world(HISTORY)
    model = collaborative(data)
    assert align(model, data.user_ids, data.item_ids) is model


def serving(data: InteractionData, **models) -> ServingHybrid:
    content = ContentRecommender().fit(data)
    weights = {"content_based": 0.4, "collaborative": 0.35, "two_tower": 0.25}
    return ServingHybrid({"content_based": content, **models}, data.user_ids, data.item_ids, weights)


def rows(values) -> sp.csr_matrix:
    return sp.csr_matrix(np.asarray([values], dtype=np.float32))


def declared(data: InteractionData, user: int) -> sp.csr_matrix:
    return data.user_content[user]


def test_ranking_keeps_to_allowed_items_and_never_shows_dismissed_ones():
    data = platform_world(HISTORY)
    hybrid = serving(data, collaborative=collaborative(data))
    allowed = np.asarray([True, True, False, True])
    result = hybrid.rank(0, 4, rows([1, 0, 0, 0]), rows([0, 1, 0, 0]), declared(data, 0), allowed)
    assert list(result.items) == [3]  # 0 seen, 1 dismissed, 2 not allowed
    assert result.path == "no_two_tower" and set(result.components) == {"content_based", "collaborative"}

    again = hybrid.rank(0, 4, rows([1, 0, 0, 0]), rows([0, 1, 0, 0]), declared(data, 0), allowed,
                        exclude_seen=False)
    assert set(again.items) == {0, 3}


def test_a_user_with_no_interactions_is_ranked_by_content_alone():
    data = platform_world(HISTORY)
    hybrid = serving(data, collaborative=collaborative(data))
    result = hybrid.rank(None, 2, rows([0, 0, 0, 0]), rows([0, 0, 0, 0]), declared(data, 0), np.ones(4, bool))
    assert result.path == "cold_start" and result.weights == {"content_based": 1.0}
    assert list(result.items) == [0, 2]  # the Django position, then the Python startup
    assert any("Matches 2 of your 2 skills" in reason for reason in hybrid.reasons(result.items, declared(data, 0),
                                                                                     rows([0, 0, 0, 0]))[0])


class Broken:
    name = "collaborative"

    def linear_items(self):
        return None

    def fold_in(self, history, negatives=None):
        raise RuntimeError("corrupt factors")


def test_a_component_that_fails_to_score_drops_out_instead_of_failing_the_request():
    data = platform_world(HISTORY)
    hybrid = serving(data, collaborative=Broken())
    result = hybrid.rank(0, 2, rows([1, 0, 0, 0]), rows([0, 0, 0, 0]), declared(data, 0), np.ones(4, bool))
    assert set(result.weights) == {"content_based"} and len(result.items) == 2
    assert "corrupt factors" in hybrid.unavailable["collaborative"]


def test_the_hybrid_needs_its_content_model():
    data = platform_world(HISTORY)
    with pytest.raises(EngineError, match="content"):
        ServingHybrid({"collaborative": collaborative(data)}, data.user_ids, data.item_ids, {"collaborative": 1.0})
