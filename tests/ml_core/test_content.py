"""Content-based: cold start from a declared profile, history profiles, dismisses, and reasons."""
from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp

from ml.core import content as content_module
from ml.core.base import UserState
from ml.core.content import ContentConfig, ContentRecommender
from ml.core.data import IdMap, InteractionData
from ml.core.features import platform_content, platform_user_terms

DEVELOPER = {"skills": ["python", "django", "sql", "react", "go"], "industries": ["fintech"],
             "remote_preference": "remote", "salary_min": 110_000, "salary_max": 140_000}
POSITIONS = [
    {"required_skills": ["python", "django", "sql", "go"], "industries": ["fintech"], "remote": "remote",
     "salary_min": 120_000, "salary_max": 130_000, "title": "Backend engineer"},
    {"required_skills": ["swift", "ios"], "industries": ["gaming"], "remote": "onsite", "title": "iOS developer"},
    {"required_skills": ["python", "pandas"], "industries": ["health"], "remote": "hybrid", "title": "Data analyst"},
]


def job_world(history: list[int] | None = None) -> InteractionData:
    user_content, item_content, vocabulary = platform_content([DEVELOPER, {}], POSITIONS)
    matrix = sp.lil_matrix((2, len(POSITIONS)), dtype=np.float32)
    matrix[1, 2] = 1.0  # the second user only ever looked at the data analyst job
    for item in history or []:
        matrix[0, item] = 1.0
    return InteractionData(IdMap(["dev", "other"]), IdMap(["backend", "ios", "data"]), matrix.tocsr(),
                           user_content=user_content, item_content=item_content, content_vocab=vocabulary.terms)


def test_user_without_interactions_is_served_from_the_declared_profile():
    data = job_world()
    model = ContentRecommender(ContentConfig(popularity_weight=0.0)).fit(data)
    items, _ = model.recommend(0, 3)
    assert items[0] == 0 and items[-1] == 1


def test_reasons_name_matched_skills_industry_remote_and_salary():
    data = job_world()
    model = ContentRecommender().fit(data)
    reasons = model.explain([0], data.user_content[0], data.matrix[0])[0]
    assert "Matches 4 of your 5 skills: django, go, python, ..." in reasons
    assert "In your industry: fintech" in reasons
    assert "Remote work, as you prefer" in reasons
    assert any(r.startswith("Salary in your range: 100k-150k") for r in reasons)



def test_reasons_count_the_declared_terms_the_caller_gives_even_those_the_vocabulary_lacks():
    # A skill added to the profile after fitting is not in the vocabulary, so the content row lacks it;
    # the profile lists it, and the reason counts it (it matches nothing).
    data = job_world()
    model = ContentRecommender().fit(data)
    terms = [*platform_user_terms(DEVELOPER), "skill:zig"]
    assert "skill:zig" not in model.vocab
    reasons = model.explain([0], data.user_content[0], data.matrix[0], user_terms=terms)[0]
    assert "Matches 4 of your 6 skills: django, go, python, ..." in reasons
    # without them, the content row's terms: the five the vocabulary knows
    assert "Matches 4 of your 5 skills: django, go, python, ..." in model.explain(
        [0], data.user_content[0], data.matrix[0])[0]


def test_a_wording_replaces_the_sentences_of_its_namespaces_only():
    data = job_world()
    model = ContentRecommender().fit(data)
    wording = {"skill": "Matches {matched} of the {declared} skills you and your startups list: {terms}",
               "industry": "In your startups' industry: {terms}"}
    reasons = model.explain([0], data.user_content[0], data.matrix[0], wording=wording)[0]
    assert "Matches 4 of the 5 skills you and your startups list: django, go, python, ..." in reasons
    assert "In your startups' industry: fintech" in reasons
    assert "Remote work, as you prefer" in reasons

def test_history_profile_drives_users_without_declared_terms():
    data = job_world()
    model = ContentRecommender(ContentConfig(popularity_weight=0.0)).fit(data)
    scores = model.score(np.asarray([1]))[0]
    assert scores[2] > scores[0] > scores[1]  # the analyst job, then the other python one
    assert model.explain([0], None, data.matrix[1])[0] == ["Shares skill with what you interacted with: python"]


def test_a_brand_new_user_is_scored_from_a_content_vector():
    data = job_world()
    model = ContentRecommender(ContentConfig(popularity_weight=0.0)).fit(data)
    empty = sp.csr_matrix((1, 3), dtype=np.float32)
    scores = model.user_scores(UserState(None, data.matrix[0], None, data.user_content[0])).at(None)
    np.testing.assert_allclose(scores, model.score(np.asarray([0]))[0], rtol=1e-6)
    assert model.user_scores(UserState(None, empty)).at(None).shape == (3,)


def test_dismissed_items_push_similar_content_down():
    data = job_world(history=[0])
    model = ContentRecommender(ContentConfig(popularity_weight=0.0, profile_weight=0.0)).fit(data)
    dismissed = sp.csr_matrix(([1.0], ([0], [2])), shape=(1, 3))
    before = model.user_scores(UserState(0, data.matrix[0])).at(None)
    after = model.user_scores(UserState(0, data.matrix[0], dismissed)).at(None)
    assert after[2] < before[2]



def test_history_profiles_come_from_the_kept_rows_and_artifacts_with_stored_profiles_still_load(tmp_path, world):
    model = ContentRecommender().fit(world)
    assert model.history is None and model.matrix.nnz == world.matrix.nnz  # rows kept, not 1.2 GB of profiles
    rows = np.arange(world.n_users)
    expected = model.score(rows)
    model.save(tmp_path / "now")
    assert np.allclose(ContentRecommender.load(tmp_path / "now").score(rows), expected)
    # An artifact saved before the rows were kept holds the profiles themselves.
    legacy = ContentRecommender.load(tmp_path / "now")
    legacy.history = legacy._history_profiles(rows)
    legacy.matrix = None
    legacy.save(tmp_path / "legacy")
    assert np.allclose(ContentRecommender.load(tmp_path / "legacy").score(rows), expected, atol=1e-6)


def _plain_pair_scores(model: ContentRecommender, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Pair scores as the users' whole vectors (declared and history profiles) times the items'."""
    users = model._user_vectors(model.declared[rows], model._history_profiles(rows))
    return (users @ model.item_vectors[items].T).toarray()


def test_pair_scores_are_the_users_whole_vectors_times_the_items_also_after_an_item_is_edited(world, monkeypatch):
    dismissed = sp.csr_matrix((np.ones(world.n_users), (np.arange(world.n_users), np.arange(world.n_users) % 7)),
                              shape=world.matrix.shape, dtype=np.float32)
    model = ContentRecommender(ContentConfig(profile_weight=0.7, history_weight=1.3)).fit(
        replace(world, negatives=dismissed))
    touched_3 = world.matrix[:, 3].nonzero()[0][:2]
    rows, items = np.array([touched_3[0], 1, touched_3[1], touched_3[0], 63]), np.array([3, 40, 17])
    assert np.allclose(model.pair_scores(rows, items), _plain_pair_scores(model, rows, items), atol=1e-6)
    # Asked again, in another order, the users' kept profile lengths give the same scores.
    assert np.allclose(model.pair_scores(rows[::-1], items), _plain_pair_scores(model, rows[::-1], items), atol=1e-6)
    # Many items are scored a block of them at a time: the same scores, every column in its place.
    monkeypatch.setattr(content_module, "PAIR_ITEMS_BLOCK", 2)
    assert np.allclose(model.pair_scores(rows, items), _plain_pair_scores(model, rows, items), atol=1e-6)
    # Item 3 is edited to another item's terms: its new vector changes the profiles of the users who touched
    # it, and their lengths are not the ones kept for the old vectors.
    edited = model.with_items(["i3"], model.item_vectors[[30]])
    assert not np.allclose(_plain_pair_scores(edited, rows, items), _plain_pair_scores(model, rows, items))
    assert np.allclose(edited.pair_scores(rows, items), _plain_pair_scores(edited, rows, items), atol=1e-6)
    # Every user's length found at once (as a web process does at load) gives the same scores.
    found_at_once = model.with_items(["i3"], model.item_vectors[[30]])
    found_at_once.find_history_lengths(block=5)
    assert not np.isnan(found_at_once._kept_lengths()).any()
    assert np.allclose(found_at_once.pair_scores(rows, items), _plain_pair_scores(edited, rows, items), atol=1e-6)


def test_kept_pair_vectors_give_the_same_scores_without_making_the_profiles_and_only_for_their_item_vectors(
        world, monkeypatch):
    model = ContentRecommender(ContentConfig(profile_weight=0.7, history_weight=1.3)).fit(world)
    touched_3 = int(world.matrix[:, 3].nonzero()[0][0])  # whose profile item 3's edit below changes
    kept, other, items = np.array([5, touched_3, 9, touched_3, 30]), np.array([5, 2]), np.array([3, 40, 17])
    expected, expected_other = _plain_pair_scores(model, kept, items), _plain_pair_scores(model, other, items)
    assert 2 not in kept
    model.keep_pair_vectors(kept, block=2)  # in blocks, duplicates and any order: one row each, ascending
    edited = model.with_items(["i3"], model.item_vectors[[30]])  # new item vectors: the kept ones do not fit
    monkeypatch.setattr(ContentRecommender, "_history_cosines", lambda *args: pytest.fail("profiles made again"))
    assert np.allclose(model.pair_scores(kept[::-1], items), expected[::-1], atol=1e-6)
    monkeypatch.undo()
    # A user not kept (2), or the edited model's new vectors: the profiles are made as before.
    assert np.allclose(model.pair_scores(other, items), expected_other, atol=1e-6)
    assert np.allclose(edited.pair_scores(kept, items), _plain_pair_scores(edited, kept, items), atol=1e-6)
    assert not np.allclose(_plain_pair_scores(edited, kept, items), expected)
