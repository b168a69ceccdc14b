"""A tiny world whose right answer is known: a checkerboard of tastes.

Users and items come in two groups; every user interacts only with items of their own group (some held
back), declares their group's terms and carries a feature that says their group. A sound recommender
ranks the user's unseen own-group items above every other-group item.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp

from ml.core.data import IdMap, InteractionData
from ml.core.features import ContentVocabulary

N_USERS, N_ITEMS, SEEN_PER_USER = 64, 48, 16
HALF_ITEMS = N_ITEMS // 2


def group_of_user(user: int) -> int:
    return user % 2


def group_of_item(item: int) -> int:
    return 0 if item < HALF_ITEMS else 1


def own_items(user: int) -> np.ndarray:
    start = group_of_user(user) * HALF_ITEMS
    return np.arange(start, start + HALF_ITEMS)


def make_world(seed: int = 0, n_users: int = N_USERS) -> InteractionData:
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    for user in range(n_users):
        seen = rng.choice(own_items(user), size=SEEN_PER_USER, replace=False)
        rows += [user] * len(seen)
        cols += list(seen)
    matrix = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, N_ITEMS))
    item_terms = [[f"genre:{'ab'[group_of_item(i)]}", f"text:item{i}"] for i in range(N_ITEMS)]
    user_terms = [[f"genre:{'ab'[group_of_user(u)]}"] for u in range(n_users)]
    vocabulary = ContentVocabulary().fit(item_terms)
    user_features = np.eye(2, dtype=np.float32)[[group_of_user(u) for u in range(n_users)]]
    item_features = np.eye(2, dtype=np.float32)[[group_of_item(i) for i in range(N_ITEMS)]]
    return InteractionData(
        user_ids=IdMap([f"u{u}" for u in range(n_users)]),
        item_ids=IdMap([f"i{i}" for i in range(N_ITEMS)]),
        matrix=matrix,
        user_features=user_features,
        item_features=item_features,
        user_content=vocabulary.transform(user_terms),
        item_content=vocabulary.transform(item_terms),
        content_vocab=vocabulary.terms,
    )


def small_two_tower():
    """The default Two-Tower, trained long enough on small batches for a world of about 1,000 interactions."""
    from ml.core.train import TwoTowerRecommender
    from ml.core.two_tower import TwoTowerConfig

    return TwoTowerRecommender(replace(TwoTowerConfig(), epochs=30, batch_size=128, device="cpu"), seed=0)


@pytest.fixture(scope="session")
def world() -> InteractionData:
    return make_world()
