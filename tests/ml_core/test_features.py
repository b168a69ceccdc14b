"""The feature pipeline: spec, scaling, one-hot, multi-hot, text, persistence, and the platform's spec."""
import json

import numpy as np
import pytest

from ml.core.data import EngineError
from ml.core.features import (
    ITEM_FEATURE_DIM,
    USER_FEATURE_DIM,
    FeaturePipeline,
    FeatureSpec,
    platform_content,
    platform_item_features,
    platform_user_features,
    tokenize,
)

SPEC = FeatureSpec(
    users={"age": "numeric", "job": "categorical", "genres": "multi"},
    items={"year": "numeric", "genres": "multi", "title": "text"},
)
USERS = [{"age": "20", "job": "dev", "genres": "drama"}, {"age": "40", "job": "ops", "genres": ""}, {"age": ""}]
ITEMS = [
    {"year": "1990", "genres": "Drama|Comedy", "title": "The Big Sleep"},
    {"year": "2000", "genres": "Comedy", "title": "Big Fish"},
]


@pytest.fixture
def pipeline() -> FeaturePipeline:
    return FeaturePipeline(SPEC).fit(USERS, ITEMS)


def test_spec_rejects_unknown_kinds():
    with pytest.raises(EngineError, match="kind"):
        FeatureSpec.from_dict({"users": {"age": "number"}})


def test_numeric_is_standardised_and_missing_takes_the_mean(pipeline):
    encoded = pipeline.transform(USERS, ITEMS)
    names = pipeline.users.dense_names()
    age = encoded.user_features[:, names.index("age")]
    np.testing.assert_allclose(age, [-1.0, 1.0, 0.0])


def test_categorical_and_multi_are_one_hot(pipeline):
    encoded = pipeline.transform(USERS, ITEMS)
    names = pipeline.users.dense_names()
    assert encoded.user_features[0, names.index("job=dev")] == 1
    assert encoded.user_features[1, names.index("job=dev")] == 0
    item_names = pipeline.items.dense_names()
    assert encoded.item_features[0, item_names.index("genres=comedy")] == 1
    assert encoded.item_features[0, item_names.index("genres=drama")] == 1
    assert encoded.item_features.dtype == np.float32


def test_content_terms_put_users_and_items_in_one_vocabulary(pipeline):
    encoded = pipeline.transform(USERS, ITEMS)
    vocab = encoded.content_vocab
    assert "genres:drama" in vocab and "text:big" in vocab and "text:the" not in vocab
    drama = vocab.index("genres:drama")
    assert encoded.user_content[0, drama] > 0  # the user's declared genre lands on the items' term
    norms = np.sqrt(np.asarray(encoded.item_content.multiply(encoded.item_content).sum(axis=1)).ravel())
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)


def test_vocabulary_is_capped_at_the_most_frequent_terms():
    pipeline = FeaturePipeline(SPEC)
    pipeline.config.max_terms = 3
    pipeline.fit(USERS, ITEMS)
    assert len(pipeline.vocabulary.terms) == 3
    assert "genres:comedy" in pipeline.vocabulary.terms and "text:big" in pipeline.vocabulary.terms


def test_nan_feature_is_an_error(pipeline):
    with pytest.raises(EngineError, match="NaN"):
        pipeline.transform([{"age": float("nan")}], ITEMS)
    with pytest.raises(EngineError, match="not a number"):
        pipeline.transform([{"age": "old"}], ITEMS)


def test_saved_pipeline_encodes_the_same(pipeline, tmp_path):
    pipeline.save(tmp_path)
    json.loads((tmp_path / "features.json").read_text())  # plain JSON, no pickle
    loaded = FeaturePipeline.load(tmp_path)
    before, after = pipeline.transform(USERS, ITEMS), loaded.transform(USERS, ITEMS)
    np.testing.assert_array_equal(before.user_features, after.user_features)
    np.testing.assert_array_equal(before.item_content.toarray(), after.item_content.toarray())


def test_tokenize_drops_stop_words_and_numbers():
    assert tokenize("The C++ developer, 5 years of Python!") == ["c++", "developer", "years", "python"]


DEVELOPER = {
    "role": "developer", "years_experience": 6, "skills": ["python", "django", "sql", "react", "go"],
    "industries": ["fintech"], "remote_preference": "remote", "salary_min": 110_000, "salary_max": 140_000,
    "bio": "Backend developer",
}
POSITION = {
    "item_type": "position", "required_skills": ["python", "django", "sql", "aws"], "salary_min": 120_000,
    "salary_max": 150_000, "remote": "remote", "industries": ["fintech"], "stage": "Series B", "team_size": 40,
    "title": "Backend engineer", "description": "Build APIs in Python",
}


def test_platform_user_features_follow_the_documented_table():
    features = platform_user_features([DEVELOPER, {"role": "investor", "check_size_min": 50_000}])
    assert features.shape == (2, USER_FEATURE_DIM) == (2, 20)
    assert features[0, :3].tolist() == [1, 0, 0]
    assert features[0, 3] == pytest.approx(6 / 30)
    assert features[0, 4] == pytest.approx(5 / 20)
    assert features[0, 6] == 1  # remote
    assert features[1, 2] == 1 and features[1, 11] > 0  # investor with a check size


def test_platform_item_features_have_at_least_15_dimensions():
    features = platform_item_features([POSITION, {"item_type": "startup", "stage": "seed", "team_size": 5}])
    assert features.shape == (2, ITEM_FEATURE_DIM) and ITEM_FEATURE_DIM >= 15
    assert features[0, 0] == 1 and features[1, 1] == 1
    assert features[0, 16] == 1  # series B counts as growth
    assert features[1, 14] == 1  # seed


def test_platform_content_matches_declared_skills_with_required_ones():
    user_content, item_content, vocabulary = platform_content([DEVELOPER], [POSITION])
    shared = set(user_content[0].indices) & set(item_content[0].indices)
    names = {vocabulary.terms[t] for t in shared}
    assert {"skill:python", "skill:django", "skill:sql", "industry:fintech", "remote:remote"} <= names
    assert any(n.startswith("salary:") for n in names)
