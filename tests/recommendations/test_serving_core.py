"""The ranker as the platform serves it, without a database: the content vocabulary rebuilt from an artifact,
components from different snapshots aligned by outside id, and the filters and fallbacks."""
import numpy as np
import pytest
import scipy.sparse as sp

from ml.core.base import UserScores, UserState
from ml.core.collaborative import ALSConfig, CollaborativeRecommender
from ml.core.content import ContentRecommender
from ml.core.data import IdMap, InteractionData
from ml.core.features import platform_content, platform_user_terms
from ml.core.ranker import AlignedComponent, Ranker, align

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


def test_the_content_artifact_keeps_the_vocabulary_that_encodes_users_exactly_as_training_did(tmp_path):
    data = platform_world(HISTORY)
    _, _, trained_vocabulary = platform_content(USERS, ITEMS)
    ContentRecommender().fit(data).save(tmp_path / "content")
    content = ContentRecommender.load(tmp_path / "content")

    rebuilt = content.vocabulary()
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

    history = sp.csr_matrix(([4.0], ([0], [4])), shape=(1, 5))  # applied to position:2, in reference rows
    own = model.user_scores(UserState(0, sp.csr_matrix(([4.0], ([0], [1])), shape=(1, 4)))).at(None)
    scores = aligned.user_scores(UserState(1, history)).at(None)
    np.testing.assert_allclose(scores[[1, 4, 2, 0]], own, rtol=1e-5)
    assert scores[3] == pytest.approx(own.mean(), rel=1e-5)  # the new item: no opinion


def test_a_user_the_component_never_saw_is_scored_from_their_rows():
    aligned = AlignedComponent(collaborative(platform_world(HISTORY)), IdMap(["1", "42"]),
                               IdMap(["position:1", "position:2"]))
    scores = aligned.user_scores(UserState(1, sp.csr_matrix(([1.0], ([0], [1])), shape=(1, 2)))).at(None)
    assert scores.shape == (2,) and np.isfinite(scores).all()


def test_a_component_of_the_same_snapshot_is_used_as_it_is():
    data = platform_world(HISTORY)
    model = collaborative(data)
    assert align(model, data.user_ids, data.item_ids) is model


def serving(data: InteractionData, **models) -> Ranker:
    content = ContentRecommender().fit(data)
    weights = {"content_based": 0.4, "collaborative": 0.35, "two_tower": 0.25}
    unavailable = {} if "two_tower" in models else {"two_tower": "no active two_tower version"}
    return Ranker({"content_based": content, **models}, weights, data.n_items, unavailable=unavailable)


def rows(values) -> sp.csr_matrix:
    return sp.csr_matrix(np.asarray([values], dtype=np.float32))


def declared(data: InteractionData, user: int) -> sp.csr_matrix:
    return data.user_content[user]


def test_ranking_keeps_to_allowed_items_and_never_shows_dismissed_ones():
    data = platform_world(HISTORY)
    hybrid = serving(data, collaborative=collaborative(data))
    allowed = np.asarray([True, True, False, True])
    user = UserState(0, rows([1, 0, 0, 0]), rows([0, 1, 0, 0]), declared(data, 0))
    result = hybrid.rank(user, 4, allowed)
    assert list(result.items) == [3]  # 0 seen, 1 dismissed, 2 not allowed
    assert result.path == "no_two_tower" and set(result.components) == {"content_based", "collaborative"}

    again = hybrid.rank(user, 4, allowed, exclude_seen=False)
    assert set(again.items) == {0, 3}


def test_a_user_with_no_interactions_is_ranked_by_content_alone():
    data = platform_world(HISTORY)
    hybrid = serving(data, collaborative=collaborative(data))
    result = hybrid.rank(UserState(None, rows([0, 0, 0, 0]), rows([0, 0, 0, 0]), declared(data, 0)), 2)
    assert result.path == "cold_start" and result.weights == {"content_based": 1.0}
    assert list(result.items) == [0, 2]  # the Django position, then the Python startup
    reasons = hybrid.components["content_based"].explain(result.items, declared(data, 0), rows([0, 0, 0, 0]))
    assert any("Matches 2 of your 2 skills" in reason for reason in reasons[0])


class Broken:
    name = "collaborative"

    def linear_items(self):
        return None

    def user_scores(self, user) -> UserScores:
        raise RuntimeError("corrupt factors")


def test_a_component_that_fails_to_score_drops_out_instead_of_failing_the_request():
    data = platform_world(HISTORY)
    hybrid = serving(data, collaborative=Broken())
    result = hybrid.rank(UserState(0, rows([1, 0, 0, 0]), rows([0, 0, 0, 0]), declared(data, 0)), 2)
    assert set(result.weights) == {"content_based"} and len(result.items) == 2
    assert "corrupt factors" in result.unavailable["collaborative"] and result.path == "no_two_tower"


def test_without_a_content_model_the_collaborative_one_serves():
    data = platform_world(HISTORY)
    ranker = Ranker({"collaborative": collaborative(data)}, {"content_based": 0.5, "collaborative": 0.5}, 4,
                    unavailable={"content_based": "no active content_based version"})
    result = ranker.rank(UserState(0, rows([1, 0, 0, 0]), rows([0, 0, 0, 0])), 3)
    assert result.path == "no_content" and set(result.weights) == {"collaborative"} and len(result.items) == 3
