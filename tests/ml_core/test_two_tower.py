"""The Two-Tower recommender on a tiny checkerboard world: users of group A like items of group A."""
from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from ml.core.base import UserState
from ml.core.data import EngineError, IdMap, InteractionData
from ml.core.train import TwoTowerRecommender, split_examples
from ml.core.two_tower import TwoTowerConfig

N_USERS, N_ITEMS, PER_USER = 120, 60, 10  # 1,200 interactions: above the 500 minimum


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    # These models are tiny: a second intra-op thread buys nothing, and on a busy 2-core machine the threads'
    # spin-waits made this file 10x slower (220 s against 20 s).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def checkerboard(seed: int = 0, features: bool = False, n_users: int = N_USERS) -> InteractionData:
    """Each user picks PER_USER items of their own group (user % 2 == item % 2); features carry the group."""
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    for user in range(n_users):
        own_group = np.arange(user % 2, N_ITEMS, 2)
        rows += [user] * PER_USER
        cols += list(rng.choice(own_group, PER_USER, replace=False))
    matrix = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, N_ITEMS))
    data = InteractionData(IdMap([f"u{u}" for u in range(n_users)]), IdMap([f"i{i}" for i in range(N_ITEMS)]), matrix)
    if features:
        data.user_features = _group_features(np.arange(n_users) % 2, 20, rng)
        data.item_features = _group_features(np.arange(N_ITEMS) % 2, 15, rng)
    return data


def _group_features(groups: np.ndarray, width: int, rng: np.random.Generator) -> np.ndarray:
    # one-hot group in the first two columns, faint noise in the rest
    out = rng.normal(scale=0.1, size=(len(groups), width)).astype(np.float32)
    out[:, :2] = np.eye(2, dtype=np.float32)[groups]
    return out


def small(config: TwoTowerConfig, **changes) -> TwoTowerConfig:
    """The same model, trained briefly on small batches: the world has about 1,000 training examples."""
    return replace(config, **{"epochs": 10, "batch_size": 128, "device": "cpu", **changes})


def share_in_own_group(model: TwoTowerRecommender, data: InteractionData, k: int = 5) -> float:
    hits = 0
    for user in range(data.n_users):
        seen = data.matrix[user].indices
        items, _ = model.recommend(user, k, exclude=seen)
        hits += int((items % 2 == user % 2).sum())
    return hits / (data.n_users * k)


def test_default_config_recovers_the_checkerboard_from_interactions_alone():
    data = checkerboard()
    model = TwoTowerRecommender(small(TwoTowerConfig()), seed=0).fit(data)
    assert share_in_own_group(model, data) >= 0.95


def test_seed_preset_recovers_the_checkerboard_from_features():
    data = checkerboard(features=True)
    model = TwoTowerRecommender(small(TwoTowerConfig.seed(), batch_size=256, lr=1e-2), seed=0).fit(data)
    assert share_in_own_group(model, data) >= 0.95


def test_seed_preset_is_the_seed_architecture():
    config = TwoTowerConfig.seed()
    assert (config.hidden_dims, config.embedding_dim, config.dropout) == ([256, 128], 128, 0.2)
    assert (config.loss, config.scoring) == ("bce", "head")
    assert not (config.use_item_ids or config.use_user_ids or config.use_history)


def test_production_preset_trains_longer_and_wider():
    config = TwoTowerConfig.production()
    assert (config.epochs, config.lr, config.batch_size, config.embedding_dim) == (50, 5e-4, 1024, 256)


@pytest.mark.parametrize("preset", [TwoTowerConfig, TwoTowerConfig.seed])
def test_save_then_load_gives_identical_scores(tmp_path, preset):
    data = checkerboard(features=True)
    model = TwoTowerRecommender(small(preset(), epochs=3), seed=0).fit(data)
    model.metrics = {"ndcg@10": 0.5}
    model.save(tmp_path / "two_tower")
    loaded = TwoTowerRecommender.load(tmp_path / "two_tower")
    users = np.arange(data.n_users)
    np.testing.assert_array_equal(loaded.score(users), model.score(users))
    assert loaded.metrics == {"ndcg@10": 0.5} and loaded.fingerprint == model.fingerprint
    assert loaded.user_ids.ids == data.user_ids.ids and loaded.item_ids.ids == data.item_ids.ids
    assert {"meta.json", "arrays.npz", "weights.pt"} <= {f.name for f in (tmp_path / "two_tower").iterdir()}


def test_same_seed_gives_the_same_model():
    data = checkerboard()
    config = small(TwoTowerConfig(), epochs=3)
    first = TwoTowerRecommender(config, seed=7).fit(data).score(np.arange(5))
    second = TwoTowerRecommender(config, seed=7).fit(data).score(np.arange(5))
    np.testing.assert_array_equal(first, second)


def test_a_history_scores_like_the_user_it_came_from(tmp_path):
    data = checkerboard(features=True)
    model = TwoTowerRecommender(small(TwoTowerConfig(), epochs=3), seed=0).fit(data)
    model.save(tmp_path / "two_tower")
    loaded = TwoTowerRecommender.load(tmp_path / "two_tower")
    user = 3
    from_history = loaded.user_scores(UserState(None, data.matrix[user], features=data.user_features[user])).at(None)
    np.testing.assert_allclose(from_history, model.score(np.array([user]))[0], atol=1e-5)


def test_a_new_history_of_one_group_ranks_that_group_first():
    data = checkerboard()
    model = TwoTowerRecommender(small(TwoTowerConfig()), seed=0).fit(data)
    scores = model.user_scores(UserState(None, history_of(data, [1, 3, 5, 7]))).at(None)
    top = np.argsort(-scores)[:10]
    assert (top % 2 == 1).mean() >= 0.9


def test_a_model_with_user_ids_refuses_to_score_a_new_history():
    data = checkerboard()
    model = TwoTowerRecommender(small(TwoTowerConfig(), epochs=1, use_user_ids=True), seed=0).fit(data)
    with pytest.raises(EngineError, match="per known user"):
        model.user_scores(UserState(None, history_of(data, [1, 3])))


def test_validation_targets_are_kept_out_of_the_training_histories():
    matrix = checkerboard().matrix
    train, val, history = split_examples(matrix, 0.2, seed=0, device=torch.device("cpu"))
    assert len(train) + len(val) == matrix.nnz and len(val) == round(0.2 * matrix.nnz)
    assert history.nnz == len(train)
    held_out = set(zip(val.users.tolist(), val.items.tolist(), strict=True))
    rows, cols = history.nonzero()
    assert held_out.isdisjoint(zip(rows.tolist(), cols.tolist(), strict=True))
    assert train.in_history and not val.in_history


def test_unknown_user_row_raises():
    model = TwoTowerRecommender(small(TwoTowerConfig(), epochs=1), seed=0).fit(checkerboard())
    with pytest.raises(EngineError, match="unknown user row"):
        model.score(np.array([N_USERS]))


def test_too_few_interactions_raise_a_clear_error():
    data = checkerboard(n_users=49)  # 490 interactions
    with pytest.raises(EngineError, match="at least 500 interactions"):
        TwoTowerRecommender(small(TwoTowerConfig())).fit(data)


@pytest.mark.parametrize("side", ["user_features", "item_features"])
def test_nan_features_raise(side):
    data = checkerboard(features=True)
    getattr(data, side)[4, 2] = np.nan
    with pytest.raises(EngineError, match="NaN"):
        TwoTowerRecommender(small(TwoTowerConfig())).fit(data)


def test_progress_is_reported_every_epoch_with_losses():
    events = []
    model = TwoTowerRecommender(small(TwoTowerConfig(), epochs=4), seed=0)
    model.fit(checkerboard(), progress=lambda event, info: events.append((event, info)))
    # A fit says it begins (so that a watcher shows it at epoch 0 of 4), then reports every epoch.
    assert events[0] == ("fit", {"algorithm": "two_tower", "unit": "epoch", "total": 4})
    epochs = [info for event, info in events[1:]]
    assert [event for event, _ in events[1:]] == ["epoch"] * 4
    assert [info["epoch"] for info in epochs] == [1, 2, 3, 4]
    for info in epochs:
        assert info["algorithm"] == "two_tower" and info["epochs"] == 4 and info["seconds"] >= 0
        assert info["lr"] == model.config.lr  # the rate the epoch trained at: no plateau in 4 epochs
        assert np.isfinite(info["train_loss"]) and np.isfinite(info["val_loss"])
        # the best epoch so far: the one with the lowest validation loss up to this one
        losses = [e["val_loss"] for e in epochs[:info["epoch"]]]
        assert info["best_epoch"] == 1 + losses.index(min(losses))


def test_early_stopping_stops_when_the_validation_loss_stops_improving():
    config = small(TwoTowerConfig(), epochs=200, lr=1e-2, early_stopping_patience=3)
    model = TwoTowerRecommender(config, seed=0).fit(checkerboard())
    ran = len(model.training_log["epochs"])
    assert ran < 200
    assert ran == model.training_log["best_epoch"] + 3
    best = min(epoch["val_loss"] for epoch in model.training_log["epochs"])
    assert model.training_log["best_val_loss"] == best


def test_trains_on_the_cpu():
    model = TwoTowerRecommender(small(TwoTowerConfig(), epochs=1), seed=0).fit(checkerboard())
    assert all(p.device == torch.device("cpu") for p in model.model.parameters())


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_it_raises():
    with pytest.raises(EngineError, match="CUDA"):
        TwoTowerRecommender(small(TwoTowerConfig(), device="cuda")).fit(checkerboard())


def test_unknown_loss_is_rejected():
    with pytest.raises(EngineError, match="unknown loss"):
        TwoTowerConfig(loss="hinge")


def history_of(data, items) -> sp.csr_matrix:
    return sp.csr_matrix((np.ones(len(items), np.float32), ([0] * len(items), items)), shape=(1, data.n_items))
