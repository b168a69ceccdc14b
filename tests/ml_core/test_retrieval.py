"""Serving with retrieval indexes: exact where a group is small, close to exact where it is indexed.

The world: 4,000 items of two types whose content and interactions follow 40 planted tastes, with real
content and ALS components. Exact ranking must equal the plain blend of per-user z-scores over all
items; retrieval must find most of the exact top 10 while scoring a fraction of the items. The sparse
content vectors are searched by the in-house cluster index, the dense ones by faiss (IVF-Flat).
"""
from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp

from ml.core.base import UserState
from ml.core.collaborative import ALSConfig, CollaborativeRecommender
from ml.core.content import ContentRecommender
from ml.core.data import IdMap, InteractionData
from ml.core.features import ContentVocabulary
from ml.core.ranker import Ranker
from ml.core.retrieval import ClusterIndex, FaissIndex, Retrieval, RetrievalConfig, first_kept
from ml.core.tuning import zscore

N_USERS, N_ITEMS, N_TASTES = 400, 4000, 40
WEIGHTS = {"content_based": 0.5, "collaborative": 0.5}
# Clustered at this size: 2,000 items per type, 40 clusters each, a quarter of them probed.
SMALL_INDEX = RetrievalConfig(exact_up_to=1000, items_per_cluster=50, probe_share=0.25, min_probe=1, candidates=100,
                              stats_sample=1500)


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(7)
    taste_of_item = rng.integers(N_TASTES, size=N_ITEMS)
    item_terms = [[f"skill:s{taste}", f"skill:s{(taste + 1) % N_TASTES}", f"text:w{rng.integers(300)}"]
                  for taste in taste_of_item]
    taste_of_user = rng.integers(N_TASTES, size=N_USERS)
    rows, cols = [], []
    for user, taste in enumerate(taste_of_user):
        liked = rng.choice(np.flatnonzero(taste_of_item == taste), size=12, replace=False)
        rows += [user] * len(liked)
        cols += list(liked)
    vocabulary = ContentVocabulary().fit(item_terms)
    data = InteractionData(
        user_ids=IdMap([str(u) for u in range(N_USERS)]), item_ids=IdMap([str(i) for i in range(N_ITEMS)]),
        matrix=sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(N_USERS, N_ITEMS)),
        user_content=vocabulary.transform([[f"skill:s{t}"] for t in taste_of_user]),
        item_content=vocabulary.transform(item_terms), content_vocab=vocabulary.terms)
    models = {"content_based": ContentRecommender().fit(data),
              "collaborative": CollaborativeRecommender(ALSConfig(factors=16, iterations=6)).fit(data)}
    groups = np.where(np.arange(N_ITEMS) < N_ITEMS // 2, "position", "startup")
    return data, models, groups


def ranked(data, models, retrieval, user: int, k: int = 10, allowed=None):
    ranker = Ranker(models, WEIGHTS, N_ITEMS, retrieval=retrieval or Retrieval.exact(models, N_ITEMS))
    return ranker.rank(state(data, user), k, allowed)


def state(data, user: int) -> UserState:
    return UserState(user, data.matrix[user], sp.csr_matrix((1, N_ITEMS)), data.user_content[user])


def test_exact_ranking_is_the_blend_of_z_scores_over_all_items(world):
    data, models, _ = world
    for user in (0, 1, 2):
        history = data.matrix[user]
        blended = sum(w * zscore(models[n].user_scores(state(data, user)).at(None)[None, :], history)[0]
                      for n, w in WEIGHTS.items())
        blended[history.indices] = -np.inf
        expected = np.argsort(-blended, kind="stable")[:10]

        result = ranked(data, models, None, user)  # no retrieval given: exact
        np.testing.assert_array_equal(np.sort(result.items), np.sort(expected))
        np.testing.assert_allclose(result.scores, blended[result.items], rtol=1e-4, atol=1e-4)


def test_retrieval_finds_most_of_the_exact_top_ten_while_probing_a_quarter_of_the_clusters(world):
    data, models, groups = world
    retrieval = Retrieval(models, groups, SMALL_INDEX)
    assert set(retrieval.indexes) == {(name, group) for name in models for group in ("position", "startup")}
    recalls = [len(set(ranked(data, models, retrieval, user).items) & set(ranked(data, models, None, user).items)) / 10
               for user in range(0, N_USERS, 8)]
    assert np.mean(recalls) >= 0.9


def test_probing_every_cluster_with_room_for_every_candidate_is_exact(world):
    data, models, groups = world
    everything = Retrieval(models, groups,
                           replace(SMALL_INDEX, probe_share=1.0, candidates=N_ITEMS, stats_sample=10**6))
    for user in (3, 4):
        assert list(ranked(data, models, everything, user).items) == list(ranked(data, models, None, user).items)


def test_only_allowed_unseen_items_come_back(world):
    data, models, groups = world
    retrieval = Retrieval(models, groups, SMALL_INDEX)
    allowed = np.arange(N_ITEMS) >= N_ITEMS // 2  # startups only
    result = ranked(data, models, retrieval, 5, k=30, allowed=allowed)
    assert len(result.items) == 30 and allowed[result.items].all()
    assert not set(result.items) & set(data.matrix[5].indices)


def test_groups_whose_rows_interleave_serve_alike(world):
    data, models, groups = world
    interleaved = np.where(np.arange(N_ITEMS) % 2 == 0, "position", "startup")
    retrieval = Retrieval(models, interleaved, SMALL_INDEX)
    assert isinstance(Retrieval(models, groups, SMALL_INDEX).group_rows["startup"], slice)
    assert isinstance(retrieval.group_rows["startup"], np.ndarray)

    allowed = interleaved == "startup"
    result = ranked(data, models, retrieval, 5, k=30, allowed=allowed)
    assert len(result.items) == 30 and allowed[result.items].all()
    assert not set(result.items) & set(data.matrix[5].indices)


def test_the_sparse_index_scores_the_probed_clusters_exactly_reading_its_vectors_in_place(world):
    data, models, groups = world
    vectors, offsets = models["content_based"].linear_items()
    rows = np.flatnonzero(groups == "position")
    index = ClusterIndex(vectors, offsets, rows, SMALL_INDEX)
    # each cluster's block reads the index's own arrays: no second copy of a million items' terms
    assert all(np.shares_memory(block.indices, index.vectors.indices) for block in index.blocks if block.nnz)
    query = models["content_based"].user_scores(state(data, 3)).query
    keep = np.ones(N_ITEMS, bool)
    found = index.search(query, keep, n=len(rows))  # every item of the probed clusters, best first
    assert 0 < len(found) < len(rows)  # a probe, not a scan
    scores = np.asarray(vectors[found] @ query).ravel() + offsets[found]
    assert np.all(np.diff(scores) <= 1e-6)  # best first, by the exact score


def test_a_search_returns_the_best_kept_items_of_the_probed_clusters(world):
    data, models, groups = world
    vectors = models["collaborative"].item_factors
    rows = np.flatnonzero((groups == "position") & vectors.any(axis=1))  # items some user interacted with
    index = ClusterIndex(vectors, None, rows, replace(SMALL_INDEX, probe_share=1.0))
    assert sorted(index.rows) == sorted(rows) and index.bounds[-1] == len(rows)
    query = vectors[rows[0]]
    keep = np.ones(N_ITEMS, bool)
    keep[rows[0]] = False
    found = index.search(query, keep, n=5)  # every cluster probed: the true best five
    scores = vectors[rows] @ query
    scores[0] = -np.inf
    np.testing.assert_array_equal(found, rows[np.argsort(-scores)[:5]])


def test_items_a_component_has_no_opinion_on_are_left_out_of_its_index():
    vectors = np.zeros((300, 4), np.float32)
    vectors[:100] = np.random.default_rng(0).normal(size=(100, 4))
    index = ClusterIndex(vectors, None, np.arange(300), replace(SMALL_INDEX, items_per_cluster=10, probe_share=1.0))
    assert sorted(index.rows) == list(range(100))  # the 200 all-zero rows score 0 for everyone
    assert len(index.search(vectors[0], np.ones(300, bool), n=500)) == 100

    nothing = ClusterIndex(np.zeros((5, 4), np.float32), None, np.arange(5), SMALL_INDEX)
    assert len(nothing.search(vectors[0], np.ones(5, bool), n=3)) == 0


def test_each_component_gets_the_index_for_its_kind_of_vectors(world):
    _, models, groups = world
    retrieval = Retrieval(models, groups, SMALL_INDEX)
    assert isinstance(retrieval.indexes["content_based", "position"], ClusterIndex)  # sparse TF-IDF
    assert isinstance(retrieval.indexes["collaborative", "position"], FaissIndex)  # dense ALS factors


def test_groups_no_larger_than_the_exact_limit_are_ranked_exactly(world):
    data, models, groups = world
    default = Retrieval(models, groups)  # 2,000 items per type, under RetrievalConfig.exact_up_to
    assert not default.indexes
    for user in (6, 7):
        assert list(ranked(data, models, default, user).items) == list(ranked(data, models, None, user).items)


@pytest.fixture(scope="module")
def clustered():
    """20,000 vectors around 50 directions with long-tailed norms (as ALS factors have), and queries
    like them."""
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(50, 32)).astype(np.float32)
    vectors = centres[rng.integers(50, size=20_000)] + 0.4 * rng.normal(size=(20_000, 32)).astype(np.float32)
    vectors *= rng.lognormal(0.0, 0.5, size=(20_000, 1)).astype(np.float32)
    queries = centres[rng.integers(50, size=40)] + 0.4 * rng.normal(size=(40, 32)).astype(np.float32)
    return vectors.astype(np.float32), queries.astype(np.float32)


DENSE = replace(SMALL_INDEX, dense_items_per_list=200, dense_probe=10)  # 100 lists, a tenth probed


def exact_best(vectors, offsets, query, keep, n):
    scores = vectors @ query + (0 if offsets is None else offsets)
    scores[~keep] = -np.inf
    return np.argsort(-scores, kind="stable")[:n]


def test_the_faiss_index_finds_the_exact_best_items_of_clustered_vectors(clustered):
    vectors, queries = clustered
    index = FaissIndex(vectors, None, np.arange(len(vectors)), DENSE)
    assert len(index.head_rows) == 200  # the 1% longest, scored exactly; the rest in 19,800 / 200 lists
    assert index.index.nlist == 99 and index.n_probe == 10
    everything = np.ones(len(vectors), bool)
    recalls = [len(set(index.search(q, everything, 10)) & set(exact_best(vectors, None, q, everything, 10))) / 10
               for q in queries]
    assert np.mean(recalls) >= 0.95

    index.n_probe = index.index.nlist  # every list scanned: exactly the best, best first
    for q in queries[:5]:
        np.testing.assert_array_equal(index.search(q, everything, 10), exact_best(vectors, None, q, everything, 10))


def test_the_faiss_index_returns_only_kept_items_even_when_few_are_kept(clustered):
    vectors, queries = clustered
    index = FaissIndex(vectors, None, np.arange(len(vectors)), replace(DENSE, dense_probe=100))
    rng = np.random.default_rng(4)
    keep = rng.random(len(vectors)) < 0.5
    keep[exact_best(vectors, None, queries[0], np.ones(len(vectors), bool), 20)] = False  # its best are seen
    found = index.search(queries[0], keep, 30)
    assert keep[found].all()
    np.testing.assert_array_equal(found, exact_best(vectors, None, queries[0], keep, 30))

    few = np.zeros(len(vectors), bool)
    few[[5, 500, 5000]] = True  # a filter applied while scanning: all three, however poor their scores
    assert sorted(index.search(queries[0], few, 10)) == [5, 500, 5000]


def test_the_faiss_index_ranks_by_score_plus_offset(clustered):
    vectors, queries = clustered
    offsets = np.random.default_rng(5).normal(scale=3.0, size=len(vectors)).astype(np.float32)
    index = FaissIndex(vectors, offsets, np.arange(len(vectors)), replace(DENSE, dense_probe=100))
    everything = np.ones(len(vectors), bool)
    for q in queries[:5]:
        np.testing.assert_array_equal(index.search(q, everything, 10), exact_best(vectors, offsets, q, everything, 10))


def test_the_faiss_index_searches_only_its_groups_rows_and_leaves_out_all_zero_vectors(clustered):
    vectors, queries = clustered
    vectors = vectors.copy()
    vectors[:1000] = 0.0  # items no user interacted with: ALS has no opinion on them
    rows = np.arange(0, 10_000)  # one group's rows
    index = FaissIndex(vectors, None, rows, replace(DENSE, dense_probe=100))
    assert sorted(index.rows) == list(range(1000, 10_000))
    found = index.search(queries[0], np.ones(len(vectors), bool), 9000)
    assert sorted(found) == list(range(1000, 10_000))

    nothing = FaissIndex(np.zeros((5, 4), np.float32), None, np.arange(5), DENSE)
    assert len(nothing.search(queries[0][:4], np.ones(5, bool), n=3)) == 0


def test_the_longest_vectors_are_found_however_few_lists_are_probed(clustered):
    vectors, queries = clustered
    vectors = vectors.copy()
    long_ones = np.random.default_rng(6).choice(len(vectors), size=20, replace=False)
    vectors[long_ones] *= 30.0  # popular items: long ALS factors in any direction
    index = FaissIndex(vectors, None, np.arange(len(vectors)), replace(DENSE, dense_probe=1))
    assert set(long_ones) <= set(index.head_rows)
    everything = np.ones(len(vectors), bool)
    for item in long_ones[:5]:
        q = vectors[item] / 30.0  # a user whose taste is that item's
        best = exact_best(vectors, None, q, everything, 3)
        assert set(best) & set(long_ones)
        np.testing.assert_array_equal(index.search(q, everything, 3), best)


def test_popularitys_candidates_are_the_most_popular_kept_items_of_an_order_made_once(world):
    data, models, groups = world
    popularity = (np.asarray(data.matrix.sum(axis=0)).ravel() + np.arange(N_ITEMS) / N_ITEMS).astype(np.float32)
    retrieval = Retrieval(models, groups, SMALL_INDEX, popularity=popularity)
    order = retrieval.by_popularity["position"]
    assert sorted(order.tolist()) == np.flatnonzero(groups == "position").tolist()
    assert (np.diff(popularity[order]) <= 0).all()
    keep = np.random.default_rng(0).random(N_ITEMS) < 0.3
    assert first_kept(order, keep, 7).tolist() == [row for row in order.tolist() if keep[row]][:7]
    assert first_kept(order, np.zeros(N_ITEMS, dtype=bool), 7).tolist() == []
    # ranked with a popularity weight, the order's candidates give what scanning the kept rows gives
    weights = {**WEIGHTS, "popularity": 0.5}
    scanned = Retrieval(models, groups, SMALL_INDEX)
    for user in (1, 2, 3):
        answers = [Ranker(models, weights, N_ITEMS, popularity=popularity, retrieval=chosen).rank(
            state(data, user), 10, keep).items.tolist() for chosen in (retrieval, scanned)]
        assert answers[0] == answers[1]


def test_a_large_groups_clusters_grow_as_the_square_root_of_its_size():
    vectors = sp.random(3000, 40, density=0.2, format="csr", random_state=0, dtype=np.float32)
    fixed = ClusterIndex(vectors, None, np.arange(3000), replace(SMALL_INDEX, items_per_cluster=10))
    assert fixed.centroids_t.shape[1] == round(SMALL_INDEX.clusters_per_root_item * 3000 ** 0.5) < 3000 // 10
    small = ClusterIndex(vectors, None, np.arange(300), replace(SMALL_INDEX, items_per_cluster=10))
    assert small.centroids_t.shape[1] == 30  # the size bound, below the root's
