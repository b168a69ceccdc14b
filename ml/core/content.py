"""Content-based recommendations: a user's content vector against each item's, with reasons.

A user's vector adds two profiles in the catalog's content vocabulary (ml.core.features):
- declared: the user's own terms (skills, industries, preferences), so a user with no interactions
  at all is served;
- history: the sum of the content of the items the user interacted with, weighted by interaction
  strength, minus that of dismissed items. Made from the kept interaction rows when a user is scored,
  not stored: at a million users the profiles held 150M terms (1.2 GB), the rows 10M.
Each profile is L2-normalised so neither drowns the other; the score is the cosine with the item plus
an optional popularity prior (``popularity_weight``), which breaks ties among equally similar items
and is worth something when content is thin (tuned on validation; 0 turns it off).
"""
from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .base import ProgressCallback, Recommender, UserState, load_artifact, save_artifact
from .data import EngineError, IdMap, InteractionData, as_row, fitted, row_lengths, unit_rows
from .features import TEXT_NAMESPACE, ContentVocabulary

# Items made dense columns at a time by pair_scores: a vocabulary's terms by this many (4,414 terms: 4.5 MB).
PAIR_ITEMS_BLOCK = 256


@dataclass
class ContentConfig:
    profile_weight: float = 1.0  # the declared profile's share of the user vector
    history_weight: float = 1.0  # the interacted items' share
    negative_weight: float = 0.5  # how hard a dismissed item's content pushes away
    popularity_weight: float = 0.1  # prior added to the cosine: log-popularity scaled to [0, 1]
    # How much more a namespace's terms count in the cosine than the others': every namespace is normalised
    # on its own (features.ContentVocabulary), so each would weigh alike. On the platform people pick
    # positions by their skills: at 3, a position asking exactly a developer's skills is their best content
    # match (at 1 it ranked 52nd of 125 for a developer of the test world, behind industry and remote fits).
    namespace_weights: dict[str, float] = field(default_factory=lambda: {"skill": 3.0})
    reason_terms: int = 3  # terms named per reason


class ContentRecommender(Recommender):
    name = "content_based"

    def __init__(self, config: ContentConfig | None = None):
        self.config = config or ContentConfig()
        self.item_vectors: sp.csr_matrix | None = None  # (n_items, v), rows unit length
        self.declared: sp.csr_matrix | None = None  # (n_users, v), the users' own terms
        self.matrix: sp.csr_matrix | None = None  # (n_users, n_items) the interactions it was fitted on
        self.negatives: sp.csr_matrix | None = None  # (n_users, n_items) their dismissals, or None
        self.history: sp.csr_matrix | None = None  # (n_users, v) only from artifacts saved before the rows were
        self.prior: np.ndarray | None = None  # (n_items,) popularity prior in [0, 1]
        self.vocab: list[str] = []
        self.idf: np.ndarray | None = None  # (v,) the vocabulary's IDF, to encode profiles and new items alike
        self._scaled_prior: tuple[np.ndarray, np.ndarray] | None = None  # (prior, popularity_weight * prior)
        self._namespace_weights: tuple[list[str], dict, np.ndarray] | None = None  # (vocab, weights, per term)
        self._lengths: tuple[sp.csr_matrix, np.ndarray] | None = None  # (item vectors, history lengths or NaN)
        # (item vectors, user rows ascending, their pair vectors): :meth:`keep_pair_vectors`
        self._pair_vectors_kept: tuple[sp.csr_matrix, np.ndarray, sp.csr_matrix] | None = None

    def fit(self, data: InteractionData, *, progress: ProgressCallback | None = None) -> ContentRecommender:
        data.validate()
        if data.item_content is None or data.item_content.nnz == 0:
            raise EngineError("content_based needs item content (item_content): the items have no terms")
        step = _Steps(progress, self.name, 3)  # the items' vectors, the declared profiles, the prior
        n_terms = data.item_content.shape[1]
        self.vocab = list(data.content_vocab or [f"term{n}" for n in range(n_terms)])
        self.idf = _catalog_idf(data.item_content)
        self.item_vectors = self._weighted(data.item_content)
        step()
        declared = data.user_content if data.user_content is not None else sp.csr_matrix((data.n_users, n_terms))
        self.declared = self._weighted(declared)
        step()
        self.matrix = sp.csr_matrix(data.matrix, dtype=np.float32)  # the history profiles are made from these
        self.negatives = None if data.negatives is None else sp.csr_matrix(data.negatives, dtype=np.float32)
        counts = np.log1p(np.asarray((data.matrix > 0).sum(axis=0), dtype=np.float64).ravel())
        self.prior = (counts / max(counts.max(), 1e-12)).astype(np.float32)
        self._remember_data(data)
        step()
        return self

    def _weighted(self, terms) -> sp.csr_matrix:
        """Term rows scaled by their namespace's weight, then to unit length."""
        weighted = sp.csr_matrix(terms, dtype=np.float32, copy=True)
        weights = self._column_weights()
        if weights is not None:
            weighted.data *= weights[weighted.indices]
        return unit_rows(weighted)

    def _column_weights(self) -> np.ndarray | None:
        """Each term's namespace weight, made once per vocabulary and setting: serving asks for it on every
        request, and a 20,000-term vocabulary took 5 ms to go through."""
        weights = self.config.namespace_weights
        if not weights:
            return None
        made = self._namespace_weights
        if made is None or made[0] is not self.vocab or made[1] is not weights:
            namespaces = [term.split(":", 1)[0] for term in self.vocab]
            made = (self.vocab, weights, np.asarray([weights.get(ns, 1.0) for ns in namespaces], dtype=np.float32))
            self._namespace_weights = made
        return made[2]

    def _history_profiles(self, rows: np.ndarray) -> sp.csr_matrix:
        """(len(rows), v) the fitted users' history profiles, from their training rows."""
        if self.history is not None:
            return self.history[rows]
        return unit_rows(self._history_sums(rows))

    def _history_sums(self, rows: np.ndarray) -> sp.csr_matrix:
        """(len(rows), v) the fitted users' history profiles before their scaling to unit length."""
        items = fitted(self.item_vectors, self.name)
        # Items added since training have no column in the training rows: the rows are widened to every item
        # (no copy), where slicing a million items' vectors down to the fitted ones copied them all.
        return _widened(self._net_weights(rows), items.shape[0]) @ items

    def _net_weights(self, rows: np.ndarray) -> sp.csr_matrix:
        """(len(rows), n fitted items) each user's interaction weights less their dismissals'."""
        weights = fitted(self.matrix, self.name)[rows]
        negatives = None if self.negatives is None else self.negatives[rows]
        if negatives is not None and negatives.nnz:  # one product of the rows' net weights, not one per side
            weights = weights - self.config.negative_weight * negatives
        return sp.csr_matrix(weights)

    def _history_cosines(self, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """(len(rows), m) each fitted user's history profile's cosine with each of m items, given as ``columns``
        (v, m) dense: the users' net weights times the products of the few items they touched with the
        items, over the profiles' lengths, each found once per user and kept. A developer's request asks it
        of its candidate positions' founders, several hundred of them, whose whole profiles (every touched
        item's terms summed) took 4.1 ms a request to make again at a million items."""
        if self.history is not None:
            return self.history[rows] @ columns
        weights = self._net_weights(rows)
        touched, at = np.unique(weights.indices, return_inverse=True)
        by_touched = fitted(self.item_vectors, self.name)[touched] @ columns
        compact = sp.csr_matrix((weights.data, at.ravel(), weights.indptr), shape=(len(rows), len(touched)))
        return (compact @ by_touched) / self._history_lengths(rows)[:, None]

    def _history_lengths(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows),) the lengths of the users' history profiles (1 for an empty one), kept per user as
        found (:meth:`find_history_lengths` finds them all)."""
        lengths = self._kept_lengths()
        missing = np.unique(rows[np.isnan(lengths[rows])])
        if len(missing):
            lengths[missing] = self._lengths_of(missing)
        return lengths[rows]

    def prepare_for_requests(self) -> None:
        self._column_weights()
        self.find_history_lengths()

    def find_history_lengths(self, block: int = 16384) -> None:
        """Find and keep every fitted user's history profile length, block by block: a web process does it
        once, when it loads the model (10.6 s and 4 MB for a million users), rather than a request at a time
        for the users it asks about."""
        if self.history is not None:  # profiles stored whole (unit length): no lengths to find
            return
        lengths = self._kept_lengths()
        for start in range(0, len(lengths), block):
            rows = np.arange(start, min(start + block, len(lengths)))
            lengths[rows] = self._lengths_of(rows)

    def _kept_lengths(self) -> np.ndarray:
        """(n_users,) float32 the history profile lengths found so far, NaN for the others: for these item
        vectors (:meth:`with_items` replaces them, and with them the profiles' lengths)."""
        vectors = fitted(self.item_vectors, self.name)
        if self._lengths is None or self._lengths[0] is not vectors:
            self._lengths = (vectors, np.full(fitted(self.matrix, self.name).shape[0], np.nan, dtype=np.float32))
        return self._lengths[1]

    def _lengths_of(self, rows: np.ndarray) -> np.ndarray:
        return row_lengths(sp.csr_matrix(self._history_sums(rows)))

    def _user_vectors(self, declared: sp.csr_matrix, history: sp.csr_matrix) -> sp.csr_matrix:
        return self.config.profile_weight * declared + self.config.history_weight * history

    def score(self, user_rows: np.ndarray) -> np.ndarray:
        rows = self._check_rows(user_rows)
        declared = fitted(self.declared, self.name)[rows]
        return self._scores(self._user_vectors(declared, self._history_profiles(rows)))

    def linear_items(self) -> tuple[sp.csr_matrix, np.ndarray]:
        return self.item_vectors, self._offsets()

    def pair_scores(self, user_rows: np.ndarray, item_rows: np.ndarray) -> np.ndarray:
        """(len(user_rows), len(item_rows)) the cosine of each user's fitted vector (declared terms and
        history, as trained) with each item's: how well the items suit those users, without the popularity
        prior (which says how popular an item is, not how much these users like it)."""
        rows, item_rows = self._check_rows(user_rows), np.asarray(item_rows, dtype=np.int64)
        items, kept = fitted(self.item_vectors, self.name), self._kept_pair_vectors(rows)
        declared_rows = None if kept is not None else fitted(self.declared, self.name)[rows]
        scores = np.empty((len(rows), len(item_rows)), dtype=np.float32)
        for start in range(0, len(item_rows), PAIR_ITEMS_BLOCK):
            # The items as dense columns: sparse rows times them cost a third of a sparse-by-sparse
            # product (several thousand touched items against a developer, 0.7 ms against 1.8).
            columns = items[item_rows[start:start + PAIR_ITEMS_BLOCK]].T.toarray()
            scores[:, start:start + PAIR_ITEMS_BLOCK] = (
                kept @ columns if kept is not None
                else self.config.profile_weight * (declared_rows @ columns)
                + self.config.history_weight * self._history_cosines(rows, columns))
        return scores

    def keep_pair_vectors(self, user_rows: np.ndarray, block: int = 16384) -> None:
        """Make the fitted vectors :meth:`pair_scores` scores users ``user_rows`` by, whole, and keep them
        (for these item vectors), in place of any kept before: it then reads them rather than making them
        from the users' interactions. Serving keeps its positions' founders' (``ml.serving_set``): a
        developer's request asks for several hundred of them. At a million items (589 founders a request,
        144,031 in all) that took 2.0 ms a request made again and 0.3 ms read; keeping them all took 1.2 s
        and 111 MB at the load."""
        rows = np.unique(self._check_rows(np.asarray(user_rows, dtype=np.int64)))
        parts = [self._pair_vectors(rows[start:start + block]) for start in range(0, len(rows), block)]
        vectors = sp.csr_matrix(sp.vstack(parts)) if parts else sp.csr_matrix((0, len(self.vocab)), dtype=np.float32)
        self._pair_vectors_kept = (fitted(self.item_vectors, self.name), rows, vectors)

    def _pair_vectors(self, rows: np.ndarray) -> sp.csr_matrix:
        """(len(rows), v) the users' vectors as :meth:`pair_scores` weighs them: declared and history profiles."""
        return sp.csr_matrix(self.config.profile_weight * fitted(self.declared, self.name)[rows]
                             + self.config.history_weight * self._history_profiles(rows), dtype=np.float32)

    def _kept_pair_vectors(self, rows: np.ndarray) -> sp.csr_matrix | None:
        """The kept pair vectors (:meth:`keep_pair_vectors`) of ``rows``; None unless all of them are kept
        for these item vectors."""
        kept = self._pair_vectors_kept
        if kept is None or kept[0] is not self.item_vectors or not len(kept[1]):
            return None
        at = np.minimum(np.searchsorted(kept[1], rows), len(kept[1]) - 1)
        return kept[2][at] if np.array_equal(kept[1][at], rows) else None

    def pair_score_ceiling(self) -> float:
        """The most :meth:`pair_scores` can give: both profiles (unit vectors) pointing exactly at the item."""
        return self.config.profile_weight + self.config.history_weight

    def shared_terms(self, user_row: int, item_row: int) -> dict[str, list[str]]:
        """{namespace: terms} that user ``user_row`` declared (as trained) and item ``item_row`` has."""
        declared = fitted(self.declared, self.name)[int(user_row)].indices
        item = fitted(self.item_vectors, self.name)[int(item_row)].indices
        return dict(_by_namespace(self.vocab, np.intersect1d(declared, item)))

    def _query(self, user: UserState) -> np.ndarray:
        """(v,) the user's content vector from their declared terms and current interaction rows."""
        declared, profile = self._fresh_profiles(user.content, user.history, user.negatives)
        return self._user_vectors(declared, profile)

    def _offsets(self) -> np.ndarray:
        """The weighted popularity prior, made once per fitted prior: serving asks for it on every request."""
        prior = fitted(self.prior, self.name)
        if self._scaled_prior is None or self._scaled_prior[0] is not prior:
            self._scaled_prior = (prior, self.config.popularity_weight * prior)
        return self._scaled_prior[1]

    def _fresh_profiles(self, user_content, history, negatives) -> tuple[np.ndarray, np.ndarray]:
        """One user's (declared, history) profiles from their current rows, as ``fit`` makes them, but
        each a dense (v,) vector: for one user, dense steps cost less than a sparse matrix per step."""
        if self.item_vectors is None:
            raise EngineError("content_based is not fitted")
        n_items, n_terms = self.item_vectors.shape
        declared = as_row(user_content, n_terms, "user_content").toarray()[0]
        weights = self._column_weights()
        if weights is not None:
            declared *= weights
        profile = (as_row(history, n_items, "history") @ self.item_vectors).toarray()[0]
        negatives = None if negatives is None else as_row(negatives, n_items, "negatives")
        if negatives is not None and negatives.nnz:
            profile -= self.config.negative_weight * (negatives @ self.item_vectors).toarray()[0]
        return _unit(declared), _unit(profile)

    def _scores(self, user_vectors: sp.csr_matrix) -> np.ndarray:
        # The users' block times the sparse items, the block made dense first: a sparse product would build
        # a dense result entry by entry (9x slower for 1,024 users against 40,000 items).
        users = np.asarray(user_vectors.toarray(), dtype=np.float32)
        cosine = np.asarray(fitted(self.item_vectors, self.name) @ users.T, dtype=np.float32).T
        return cosine + self._offsets()

    def vocabulary(self) -> ContentVocabulary:
        """The TF-IDF vocabulary the model was fitted with: what encodes a user's declared terms, or a new
        item's, as training encoded them."""
        if self.idf is None:
            raise EngineError("content_based is not fitted")
        return ContentVocabulary(list(self.vocab), self.idf.tolist())

    def with_items(self, keys: list[str], vectors: sp.csr_matrix) -> ContentRecommender:
        """A copy that also scores the items ``keys`` (created or edited since fitting) by their content
        ``vectors`` ((len(keys), v), in this model's vocabulary): an edited item's vector is replaced, a new
        item is appended with the mean popularity prior: the prior has not seen it, so it has no opinion
        (a prior of 0 would bury it under a strong prior's weight). Users' fitted profiles stay as they were."""
        item_ids, prior = fitted(self.item_ids, self.name), fitted(self.prior, self.name)
        index = item_ids.index
        n_items = len(item_ids)
        replaced = {index[key]: n for n, key in enumerate(keys) if key in index}
        added = [n for n, key in enumerate(keys) if key not in index]
        rows = np.arange(n_items)
        rows[list(replaced)] = n_items + np.asarray(list(replaced.values()), dtype=np.int64)
        rows = np.concatenate([rows, n_items + np.asarray(added, dtype=np.int64)])
        extended = copy.copy(self)
        extended.item_vectors = sp.csr_matrix(sp.vstack([self.item_vectors, self._weighted(vectors)]))[rows]
        extended.prior = np.concatenate([prior, np.full(len(added), prior.mean(), dtype=np.float32)])
        extended.item_ids = IdMap([*item_ids.ids, *(keys[n] for n in added)])
        extended._scaled_prior = None
        return extended

    # ------------------------------------------------------------ reasons

    def explain(self, item_rows, user_content=None, history=None, *, user_terms: Iterable[str] | None = None,
                wording: Mapping[str, str] | None = None) -> list[list[str]]:
        """Per item, why it suits a user given by a content row and / or an interaction row: their declared
        terms it matches first, then the terms their history shares with it.

        ``user_terms``: the user's declared terms as the profile gives them (``features.platform_user_terms``),
        which a reason's counts are of ("Matches 2 of your 7 skills"): the content row holds only the terms
        the vocabulary knew when the model was fitted, so a skill added since would be left out of the
        count, though the profile lists it (it matches nothing). By default the content row's terms.
        ``wording``: sentences replacing the default of some namespaces (``explain.CONTENT_WORDING``), with
        the fields {terms} (the matched terms, listed), {matched} and {declared} (how many of each)."""
        declared, profile = self._fresh_profiles(user_content, history, None)
        own = None if user_terms is None else _terms_by_namespace(user_terms)
        return self._reasons(np.flatnonzero(declared), np.flatnonzero(profile > 0), item_rows, own, wording or {})

    def _reasons(self, declared_terms: np.ndarray, liked_terms: np.ndarray, item_rows,
                 own: dict[str, list[str]] | None = None, wording: Mapping[str, str] | None = None) -> list[list[str]]:
        """``declared_terms``: the user's own term columns; ``liked_terms``: those their history leans to;
        ``own``: the user's declared values by namespace, which reasons count (by default those columns')."""
        if own is None:
            own = _by_namespace(self.vocab, declared_terms)
        declared, liked = set(declared_terms.tolist()), set(liked_terms.tolist())
        out = []
        vectors = fitted(self.item_vectors, self.name)
        indptr, indices = vectors.indptr, vectors.indices
        for item in np.atleast_1d(np.asarray(item_rows, dtype=np.int64)):
            terms = indices[indptr[item]:indptr[item + 1]].tolist()  # the row's terms, without a matrix per item
            matched = _by_namespace(self.vocab, [t for t in terms if t in declared])
            reasons = [_format(ns, values, own.get(ns, values), self.config.reason_terms, wording)
                       for ns, values in matched.items()]
            if not reasons:
                shared = _by_namespace(self.vocab, [t for t in terms if t in liked])
                reasons = [_format_history(ns, values, self.config.reason_terms) for ns, values in shared.items()]
            out.append(reasons)
        return out

    # ------------------------------------------------------------ persistence

    def save(self, path: Path) -> None:
        meta = self._common_meta(asdict(self.config)) | {"vocab": self.vocab}
        rows = {"matrix": self.matrix} if self.history is None else {"history": self.history}
        if self.negatives is not None:
            rows["negatives"] = self.negatives
        arrays = {"item_vectors": self.item_vectors, "declared": self.declared, **rows,
                  "prior": self.prior, "idf": self.idf}
        save_artifact(path, meta, arrays)

    @classmethod
    def load(cls, path: Path) -> ContentRecommender:
        meta, arrays = load_artifact(path)
        model = cls(ContentConfig(**meta["config"]))
        model._restore_common(meta)
        model.vocab = list(meta["vocab"])
        model.item_vectors, model.declared = arrays["item_vectors"], arrays["declared"]
        model.matrix, model.negatives = arrays.get("matrix"), arrays.get("negatives")
        model.history = arrays.get("history")  # artifacts saved before the rows were kept: the profiles instead
        model.prior = arrays["prior"]
        # artifacts saved before the IDF was kept: recovered from the item vectors (see _catalog_idf)
        model.idf = arrays["idf"] if "idf" in arrays else _catalog_idf(model.item_vectors)
        return model


class _Steps:
    """Progress hooks of a fit of ``steps`` steps: "fit" when made, then "step" at each call."""

    def __init__(self, progress: ProgressCallback | None, algorithm: str, steps: int):
        self.progress, self.algorithm, self.steps, self.done = progress, algorithm, steps, 0
        if progress is not None:
            progress("fit", {"algorithm": algorithm, "unit": "step", "total": steps})

    def __call__(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress("step", {"algorithm": self.algorithm, "step": self.done, "steps": self.steps})


def _catalog_idf(item_content) -> np.ndarray:
    """(v,) the IDF the vocabulary was fitted with on the item catalog, ``log((1 + n) / (1 + df)) + 1``
    (``features.ContentVocabulary.fit``): the items' nonzero terms give each term's df exactly."""
    content = sp.csr_matrix(item_content)
    n_items, n_terms = content.shape
    df = np.bincount(content.indices[content.data != 0], minlength=n_terms)
    return (np.log((1.0 + n_items) / (1.0 + df)) + 1.0).astype(np.float32)


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(vector)
    return vector / norm if norm > 0 else vector


def _widened(rows: sp.csr_matrix, width: int) -> sp.csr_matrix:
    """``rows`` with empty columns up to ``width``: the same arrays under a wider shape."""
    if rows.shape[1] == width:
        return rows
    return sp.csr_matrix((rows.data, rows.indices, rows.indptr), shape=(rows.shape[0], width))


def _by_namespace(vocab: list[str], columns) -> dict[str, list[str]]:
    """Term columns grouped by namespace: ``skill:python`` -> {"skill": ["python"]}."""
    groups: dict[str, list[str]] = defaultdict(list)
    for column in sorted(columns):
        namespace, _, value = vocab[column].partition(":")
        groups[namespace].append(value)
    return groups


def _listing(values: list[str], limit: int) -> str:
    shown = ", ".join(values[:limit])
    return f"{shown}, ..." if len(values) > limit else shown


# Each namespace's reason for the terms an item shares with the user's declared profile, addressed to the
# user: {terms} lists the matched terms, {matched} counts them, {declared} counts the user's own.
REASONS = {
    "skill": "Matches {matched} of your {declared} skills: {terms}",
    "industry": "In your industry: {terms}",
    "remote": "{terms} work, as you prefer",
    "salary": "Salary in your range: {terms}",
    "stage": "A stage you invest in: {terms}",
    "check": "Fits your check size: {terms}",
    TEXT_NAMESPACE: "Mentions your interests: {terms}",
}


def _terms_by_namespace(terms: Iterable[str]) -> dict[str, list[str]]:
    """Terms (``skill:python``) grouped by namespace, each once: {"skill": ["python"]}."""
    groups: dict[str, list[str]] = defaultdict(list)
    for term in sorted(set(terms)):
        namespace, _, value = term.partition(":")
        groups[namespace].append(value)
    return groups


def _format(namespace: str, matched: list[str], own: list[str], limit: int,
            wording: Mapping[str, str] | None = None) -> str:
    """One reason for the terms of ``namespace`` that the item shares with the user's declared profile."""
    template = (wording or {}).get(namespace) or REASONS.get(namespace, f"Same {namespace} as your profile: {{terms}}")
    text = template.format(terms=_listing(matched, limit), matched=len(matched), declared=len(own))
    return text[0].upper() + text[1:]


def _format_history(namespace: str, shared: list[str], limit: int) -> str:
    noun = "words" if namespace == TEXT_NAMESPACE else namespace
    return f"Shares {noun} with what you interacted with: {_listing(shared, limit)}"
