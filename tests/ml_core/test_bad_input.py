"""Bad input raises EngineError with a message that says what was wrong."""
import numpy as np
import pytest
import scipy.sparse as sp

from ml.core.base import load_artifact
from ml.core.collaborative import CollaborativeRecommender, PopularityRecommender
from ml.core.content import ContentRecommender
from ml.core.data import EngineError, IdMap, InteractionData
from ml.core.train import TwoTowerRecommender

from .conftest import make_world


def empty_world() -> InteractionData:
    data = make_world()
    data.matrix = sp.csr_matrix(data.matrix.shape, dtype=np.float32)
    return data


@pytest.mark.parametrize("model", [ContentRecommender, CollaborativeRecommender, PopularityRecommender])
def test_empty_interactions_are_refused(model):
    with pytest.raises(EngineError, match="empty"):
        model().fit(empty_world())


def test_no_users_at_all_is_refused():
    data = InteractionData(IdMap([]), IdMap(["a"]), sp.csr_matrix((0, 1), dtype=np.float32))
    with pytest.raises(EngineError, match="no users"):
        PopularityRecommender().fit(data)


def test_unknown_user_is_refused(world):
    model = PopularityRecommender().fit(world)
    with pytest.raises(EngineError, match="unknown user"):
        model.score(np.asarray([10_000]))
    with pytest.raises(EngineError, match="unknown id"):
        world.user_ids.row("nobody")


def test_nan_feature_is_refused(world):
    data = make_world()
    data.user_features = data.user_features.copy()
    data.user_features[3, 0] = np.nan
    with pytest.raises(EngineError, match="NaN"):
        ContentRecommender().fit(data)


def test_too_little_data_for_the_two_tower_is_refused():
    data = make_world(n_users=8)  # 128 interactions, under the 500 minimum
    with pytest.raises(EngineError, match="500"):
        TwoTowerRecommender().fit(data)


def test_content_model_without_item_content_is_refused(world):
    data = make_world()
    data.item_content = None
    with pytest.raises(EngineError, match="item content"):
        ContentRecommender().fit(data)


def test_mismatched_shapes_are_refused():
    data = make_world()
    data.item_features = data.item_features[:-1]
    with pytest.raises(EngineError, match="item_features"):
        PopularityRecommender().fit(data)


def test_missing_artifact_is_a_clear_error(tmp_path):
    with pytest.raises(EngineError, match="cannot read"):
        load_artifact(tmp_path / "nothing-here")


def test_loading_the_wrong_algorithm_is_refused(world, tmp_path):
    PopularityRecommender().fit(world).save(tmp_path)
    with pytest.raises(EngineError, match="popularity"):
        ContentRecommender.load(tmp_path)
