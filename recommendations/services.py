"""Serving and model management: a user's recommendations, training requests, activation.

``recommendations_for_user`` joins the catalog, the engine and the filters: candidates by role, the
user's current interactions and profile (so a new event or edit counts at once, without a retrain),
the hybrid with the current weights and its fallback chain, then only items that may still be shown.
"""
import atexit
import logging
import os
import threading
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import NoReturn, TypedDict

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, close_old_connections, connection, transaction
from django.utils import timezone

from ml import tasks, training
from ml.core import explain as explainer
from ml.core.diversify import DEFAULT_DIVERSITY, DEFAULT_MAX_PER_STARTUP
from ml.core.ranker import PATH_POPULAR, Ranking, single_threaded_blas
from ml.core.registry import CONTENT, POPULARITY
from ml.models import BLENDED, ModelVersion, TrainingRun, Trigger
from ml.platform_data import ROLE_ITEM_TYPES, item_key, parse_item_key
from ml.services import model_version_activate
from ml.serving_set import FEW_APPLICANTS_TEXT, MARKET, RECIPROCAL, Diversify, ReverseInterest, ServingSet, check_range
from profiles.models import TARGET_FIELDS, Interaction, a_or_an
from recsys_site.exceptions import ServiceUnavailable

from . import selectors
from .experiments import CONTROL
from .model_store import serving_models
from .models import Impression

logger = logging.getLogger(__name__)

# Items ranked beyond the limit, so that a few closed or deleted ones do not cost another pass.
SHORTLIST_MARGIN = 10


class Explanation(TypedDict):
    """One reason, as the API answers it: a plain dict, since answers are returned without a serializer
    pass (recommendations.apis)."""

    algorithm: str  # the component it comes from (ml.core.registry's names)
    text: str


@dataclass
class Recommendation:
    rank: int
    item_type: str
    item_id: int
    title: str
    score: float
    scores: dict[str, float | None]
    reasons: list[str]  # the explanations' texts, in their order
    explanations: list[Explanation] = field(default_factory=list)  # strongest contribution first


@dataclass
class Recommendations:
    user_id: int
    user_type: str
    algorithms_used: list[str]
    fallback: str
    weights: dict[str, float]
    model_versions: dict[str, int | None]
    results: list[Recommendation] = field(default_factory=list)
    recommendation_id: uuid.UUID = field(default_factory=uuid.uuid4)  # the impression that records this answer
    experiment: dict | None = None  # {"id", "name", "variant"} while an experiment runs


def candidate_types(*, role: str, item_types: list[str] | None) -> tuple[str, ...]:
    """The item types a ``role`` is recommended, narrowed to ``item_types`` when given."""
    allowed = ROLE_ITEM_TYPES[role]
    if item_types is None:
        return allowed
    refused = sorted(set(item_types) - set(allowed))
    if refused:
        raise ValidationError({"item_types": f"A {role} is recommended {', '.join(allowed)}; "
                                             f"not {', '.join(refused)}."})
    return tuple(t for t in allowed if t in item_types)


def recommendations_for_user(*, user_id: int, user_type: str, limit: int = 10, item_types: list[str] | None = None,
                             exclude_seen: bool = True, explain: bool = True,
                             weights: dict[str, float] | None = None, diversity: float = DEFAULT_DIVERSITY,
                             max_per_startup: int | None = DEFAULT_MAX_PER_STARTUP,
                             include_not_raising: bool = False) -> Recommendations:
    """Up to ``limit`` items for user ``user_id``, best first, with per-algorithm scores, reasons and the
    path taken; NotFound for an unknown user, a ValidationError when they are not a ``user_type``.

    ``weights``: the hybrid's weights for this answer only (a staff trial); by default those in force.
    ``diversity`` (0-1) and ``max_per_startup`` re-rank the list (``ml.core.diversify``): the same
    re-ranking the served evaluation measures. An investor is shown startups raising a round their checks
    fit; ``include_not_raising`` adds those that are not raising now (``ml.serving_set.market_candidates``).
    With no usable model at all (nothing trained yet, or every artifact lost) the answer is empty with
    ``fallback`` "popular" and no algorithms: a missing model is never a client error, and fitting one
    inside a request would be far too slow.
    """
    profile = selectors.user_profile(user_id=user_id, role=user_type)
    if profile is None:
        _refuse(user_id, user_type)
    types = candidate_types(role=user_type, item_types=item_types)
    models = serving_models()
    if not models.ready:
        return Recommendations(user_id, user_type, [], PATH_POPULAR, dict.fromkeys(BLENDED, 0.0),
                               models.serving_versions())
    # A staff trial of weights is no part of an experiment: it ranks what is in force with those weights.
    experiment = models.experiment if weights is None else None
    variant = experiment.variant_for(user_id) if experiment else None
    if weights is None:
        weights = variant.weights if variant and variant.weights else models.weights_for(user_type)
    with single_threaded_blas():
        answer = _rank(user_id, user_type, profile, models.serving_for(variant), types, limit, exclude_seen,
                       explain, weights, Diversify(diversity, max_per_startup), include_not_raising)
    answer.model_versions = models.versions_for(variant)
    if experiment:
        answer.experiment = {"id": experiment.id, "name": experiment.name,
                             "variant": variant.name if variant else CONTROL}
    return answer


def _refuse(user_id: int, user_type: str) -> NoReturn:
    """Why user ``user_id``, who has no ``user_type`` profile, gets no recommendations as one. Asked only
    then: the profile read that finds the user's terms is also what shows they are a ``user_type``."""
    role = selectors.user_role(user_id=user_id)
    if role is None:
        raise ValidationError({"user_id": f"User {user_id} has no developer, founder or investor profile; "
                                          "recommendations are made for those roles."})
    raise ValidationError({"user_type": f"User {user_id} is {a_or_an(role)}, not {a_or_an(user_type)}."})


def _rank(user_id: int, role: str, profile: selectors.Profile, serving: ServingSet, types, limit: int,
          exclude_seen: bool, explain: bool, weights: dict[str, float],
          diversify: Diversify = Diversify(), include_not_raising: bool = False) -> Recommendations:
    interactions = selectors.user_interactions(user_id=user_id, item_ids=serving.item_numbering())
    user = serving.user_state(user_id, interactions.history, interactions.negatives, profile.terms, profile.features)
    # Never the user themselves or their own startup: a user has one role (profiles.services), and no
    # role is recommended its own kind: founders get developers and investors, the others get startups
    # and positions, which only founders found. The market narrows an investor's: the evaluation's too.
    # And never someone who said no to the user's side (ml.serving_set.rebuffed_by): they would not answer.
    allowed = serving.allowed_for(types, role=role, checks=check_range(profile.record),
                                  include_not_raising=include_not_raising, user_id=user_id).copy()
    ranker = serving.ranker(weights)
    # A reason is anchored on something the user still stands by: a dismissed item is no anchor.
    anchorable = np.setdiff1d(interactions.history.indices, interactions.negatives.indices)

    reverse = serving.reverse_interest(user_id=user_id, role=role)

    def rank(k: int) -> Ranking:
        return ranker.rank(user, k, allowed, exclude_seen, diversify.diversity, diversify.max_per_startup, reverse)

    def anchors_of(ranking: Ranking) -> dict[str, np.ndarray]:
        return _anchors(serving, anchorable, ranking) if explain else {}

    short = _recommendable(rank, serving.item_ids, allowed, limit, anchors_of)
    result = short.ranking
    why = (_explanations(serving, role, user, profile.terms, short, interactions.kinds) if explain
           else [[] for _ in short.shown])
    if explain:
        _add_market_reasons(serving, result.items[short.shown], why)
        _add_two_sided_reasons(role, reverse, result, short.shown, why)
    used = [a for a in BLENDED if a in result.weights]
    # The other side's interest as the ranking blended it (a z-score, times RECIPROCAL_WEIGHT in the score).
    reciprocal = ([None] * len(short.shown) if result.reciprocal is None
                  else [None if np.isnan(value) else value for value in result.reciprocal[short.shown]])
    results = []
    for position, (n, explanations, theirs) in enumerate(zip(short.shown, why, reciprocal, strict=True), start=1):
        key = serving.item_numbering().ids[result.items[n]]
        item_type, item_id = parse_item_key(key)
        scores = {a: _rounded(result.components[a][n]) if a in used else None for a in BLENDED}
        scores[RECIPROCAL] = None if theirs is None else _rounded(theirs)
        results.append(Recommendation(position, item_type, item_id, short.titles[key], _rounded(result.scores[n]),
                                      scores, [e["text"] for e in explanations], explanations))
    applied = {a: _rounded(result.weights.get(a, 0.0)) for a in BLENDED}
    return Recommendations(user_id, role, used, result.path, applied, {}, results)


@dataclass
class _Shortlist:
    """What is shown of a ranking, and what its reasons need."""

    ranking: Ranking
    shown: list[int]  # positions in the ranking of the first ``limit`` items that may still be shown
    titles: dict[str, str]  # item key -> title, of those
    anchors: dict[str, np.ndarray]  # component -> per ranked item, the history row its reason names (-1: none)
    anchor_names: dict[int, str]  # history row -> name, of those rows


def _recommendable(rank, item_ids, allowed: np.ndarray, limit: int, anchors_of) -> _Shortlist:
    """The first ``limit`` items of ``rank`` that may still be shown, with their titles; ``anchors_of``
    (ranking -> {component: anchor rows}) finds what their reasons name before the titles are read, so
    the names come in the same statement.

    The models rank their training snapshot; positions closed and rows deleted since are dropped here,
    ranking further down (and no longer considering them) until ``limit`` are found or none are left.
    """
    k = limit + SHORTLIST_MARGIN
    while True:
        result = rank(k)
        keys = [item_ids.ids[row] for row in result.items]
        anchors = anchors_of(result)
        anchor_keys = sorted({item_ids.ids[row] for rows in anchors.values() for row in rows[rows >= 0]})
        titles, names = selectors.titles_and_anchor_names(keys, anchor_keys)
        if len(titles) >= limit or len(result.items) < k:
            shown = [n for n, key in enumerate(keys) if key in titles][:limit]
            named = {item_ids.index[key]: name for key, name in names.items()}
            return _Shortlist(result, shown, titles, anchors, named)
        allowed[[row for row, key in zip(result.items, keys, strict=True) if key not in titles]] = False
        k *= 4


def _anchors(serving, history_rows: np.ndarray, ranking: Ranking) -> dict[str, np.ndarray]:
    """{component: (len(ranking.items),) anchor rows} for each anchored component that scored them."""
    return {name: explainer.anchors(serving.components[name], history_rows, ranking.items)
            for name in ranking.weights if explainer.anchored(name) and name in serving.components}


def _explanations(serving, role: str, user, terms: list[str], short: _Shortlist,
                  kinds: dict[int, str]) -> list[list[Explanation]]:
    """Per shown item, the reasons of every component that scored it, strongest contribution first; content's
    count the user's declared ``terms`` as their profile gives them, in the role's words."""
    result = short.ranking
    content = serving.components.get(CONTENT) if CONTENT in result.weights else None
    matched = (content.explain(result.items[short.shown], user.content, user.history, user_terms=terms,
                               wording=explainer.CONTENT_WORDING.get(role))
               if content is not None else [[] for _ in short.shown])
    popular = explainer.popular_text(f"{role}s")  # developers, founders, investors

    def texts(name: str, n: int, content_reasons: list[str]) -> list[str]:
        if name == CONTENT:
            return content_reasons
        if name == POPULARITY:
            return [popular]
        return _anchored(name, n, short, kinds)

    return [[Explanation(algorithm=name, text=text) for name in explainer.by_contribution(result, n)
             for text in texts(name, n, content_reasons)]
            for n, content_reasons in zip(short.shown, matched, strict=True)]


def _add_market_reasons(serving: ServingSet, rows: np.ndarray, why: list[list[Explanation]]) -> None:
    """After the components' reasons, the market's: "Few applicants so far" for a position with few
    applicants per opening (``ItemMarket.few_applicants``), whose application is likely read."""
    if serving.market is None:
        return
    for explanations, few in zip(why, serving.market.few_applicants(rows), strict=True):
        if few:
            explanations.append(Explanation(algorithm=MARKET, text=FEW_APPLICANTS_TEXT))


def _add_two_sided_reasons(role: str, reverse: ReverseInterest | None, ranking: Ranking,
                           shown: list[int], why: list[list[Explanation]]) -> None:
    """After the others, the two-sided reasons: that the item's side already said yes to the user
    (``explainer.answered_text``), and for each shown item whose other side is more interested in the user
    than the typical candidate's (a reciprocal z-score above 0), one naming both sides from the terms the best
    pair shares (``explainer.two_sided_text``): "You need django; they list django and prefer fintech, your
    industry"."""
    if reverse is None or ranking.reciprocal is None:
        return
    rows = ranking.items[shown]
    keener = [n for n in shown if ranking.reciprocal[n] > 0]
    pairs = dict(zip(keener, reverse.best_pairs(ranking.items[keener]), strict=True))
    for n, explanations, said_yes in zip(shown, why, reverse.said_yes(rows), strict=True):
        pair = pairs.get(n)
        texts = [explainer.answered_text(role) if said_yes else None,
                 None if pair is None else explainer.two_sided_text(role, reverse.content.shared_terms(*pair))]
        explanations.extend(Explanation(algorithm=RECIPROCAL, text=text) for text in texts if text)


def _anchored(name: str, n: int, short: _Shortlist, kinds: dict[int, str]) -> list[str]:
    """Component ``name``'s reason for the ``n``-th ranked item, when it has an anchor that can be named
    (one deleted since the history was read has no name)."""
    rows = short.anchors.get(name)
    row = -1 if rows is None else int(rows[n])
    if row not in short.anchor_names:
        return []
    return [explainer.anchored_text(name, short.anchor_names[row], kinds[row])]


def _rounded(value) -> float:
    return round(float(value), 6)


# ---------------------------------------------------------------- impressions


def impression_of(answer: Recommendations) -> Impression:
    """The row that records ``answer`` (unsaved: ``impression_record`` writes it once the client has it)."""
    experiment = answer.experiment or {}
    return Impression(id=answer.recommendation_id, user_id=answer.user_id, user_type=answer.user_type,
                      created_at=timezone.now(), experiment_id=experiment.get("id"),
                      variant=experiment.get("variant", ""), model_versions=answer.model_versions,
                      weights=answer.weights, fallback=answer.fallback,
                      items=[item_key(item.item_type, item.item_id) for item in answer.results])


class _ImpressionBuffer:
    """The impressions answered but not yet written, and the writer that writes them in batches.

    A sync worker serves one request at a time, and its INSERT after sending an answer (a round trip and a
    commit: about 0.8 ms, 16% of a request) delays the next request as much as if the client waited for it.
    Here an answer only appends its row; a writer thread per process writes what has gathered every
    IMPRESSION_FLUSH_SECONDS in one multi-row INSERT, on its own connection. With 0, each row is written
    at once on the calling thread (tests, whose rows live in the test's transaction). What a process holds
    when it dies unannounced is lost (at most one interval); an orderly exit writes it (``close``, at exit).
    """

    MAX_ROWS = 10_000  # held while the database is down; older rows are dropped beyond it

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: list[Impression] = []
        self._writer: threading.Thread | None = None
        self._writer_pid: int | None = None  # a forked process inherits no thread: it starts its own
        self._closing = threading.Event()

    def add(self, impression: Impression) -> None:
        interval = settings.IMPRESSION_FLUSH_SECONDS
        with self._lock:
            self._rows.append(impression)
            del self._rows[:-self.MAX_ROWS]
            if interval > 0 and self._writer_pid != os.getpid():
                self._writer_pid = os.getpid()
                self._writer = threading.Thread(target=self._write_every, args=(interval,),
                                                name="impression-writer", daemon=True)
                self._writer.start()
        if interval <= 0:
            self.flush()

    def flush(self) -> int:
        """Write what is held, in one INSERT; how many rows were written. A failure is logged, never raised:
        the answers were already sent. With the database unreachable the rows are kept for the next try."""
        with self._lock:
            rows, self._rows = self._rows, []
        if not rows:
            return 0
        try:
            Impression.objects.bulk_create(rows)  # one statement: all rows or none
        except IntegrityError:  # a user deleted since their answer: write the others one by one
            return sum(self._write_one(row) for row in rows)
        except DatabaseError:
            logger.exception("%d impressions not recorded yet; kept for the next try", len(rows))
            with self._lock:
                self._rows[:0] = rows
                del self._rows[:-self.MAX_ROWS]
            return 0
        return len(rows)

    def close(self) -> None:
        """Stop the writer (it closes its connection) and write what is left."""
        self._closing.set()
        if self._writer is not None and self._writer_pid == os.getpid():
            self._writer.join(timeout=10)
        self.flush()

    @staticmethod
    def _write_one(row: Impression) -> int:
        try:
            with transaction.atomic():
                row.save(force_insert=True)
        except DatabaseError:
            logger.exception("Impression %s (user %s) was not recorded", row.id, row.user_id)
            return 0
        return 1

    def _write_every(self, interval: float) -> None:
        while not self._closing.wait(interval):
            close_old_connections()  # a connection the database dropped is replaced, not retried forever
            self.flush()
        connection.close()  # this thread's


_impressions = _ImpressionBuffer()
atexit.register(_impressions.close)
impression_record = _impressions.add
impressions_flush = _impressions.flush


def impressions_prune(*, now=None) -> int:
    """Delete impressions older than IMPRESSION_RETENTION_DAYS; how many were deleted. Interactions that
    answered them stay, unattributed."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.IMPRESSION_RETENTION_DAYS)
    return Impression.objects.filter(created_at__lt=cutoff).delete()[1].get(Impression._meta.label, 0)


# ---------------------------------------------------------------- training


@dataclass
class TrainingRequest:
    run: TrainingRun | None  # None: nothing changed since the algorithms were last trained
    active_versions: dict[str, int]


def training_request(*, algorithms: list[str], force_retrain: bool, interactions: list[dict],
                     requested_by) -> TrainingRequest:
    """Store the given interactions and queue a training run, all or nothing.

    409 while a run is in flight (the interactions are not stored either); 503 when the broker is
    down, in which case the stored interactions are taken back so that a retry does not add them twice.
    """
    with transaction.atomic():
        stored = interactions_import(interactions=interactions)
        run = training.training_run_create(algorithms=algorithms, force_retrain=force_retrain,
                                           trigger=Trigger.API, requested_by=requested_by)
    if run is None:
        return TrainingRequest(None, active_versions())
    try:
        run = tasks.enqueue(run)
    except ServiceUnavailable:
        Interaction.objects.filter(pk__in=stored).delete()
        raise
    return TrainingRequest(run, active_versions())


def interactions_import(*, interactions: list[dict]) -> list[int]:
    """Bulk-create validated events ({user_id, item_type, item_id, kind, created_at?}); returns their ids."""
    now = timezone.now()
    rows = [Interaction(user_id=event["user_id"], kind=event["kind"], created_at=event.get("created_at") or now,
                        **{f"{TARGET_FIELDS[event['item_type']]}_id": event["item_id"]})
            for event in interactions]
    return [row.pk for row in Interaction.objects.bulk_create(rows, batch_size=2000)]


def active_versions() -> dict[str, int]:
    return dict(ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).values_list("algorithm", "version"))


# ---------------------------------------------------------------- activation


@transaction.atomic
def model_versions_load(*, algorithm: str | None = None, version: int | None = None) -> dict[str, int]:
    """Activate ``algorithm`` ``version``, or with neither, each algorithm's newest ready version that is
    newer than its active one; returns {algorithm: version activated}.

    Every chosen artifact must load (``model_version_activate``): one that is missing or corrupt refuses
    the whole request (409, with the reason), and the versions active before keep serving.
    """
    if (algorithm is None) != (version is None):
        raise ValueError("give algorithm and version together, or neither")
    chosen = [(algorithm, version)] if algorithm is not None and version is not None else _newest_ready_versions()
    for name, number in chosen:
        model_version_activate(algorithm=name, version=number)
    return dict(chosen)


def _newest_ready_versions() -> list[tuple[str, int]]:
    active = active_versions()
    newest: dict[str, int] = {}
    for name, number in ModelVersion.objects.filter(status=ModelVersion.Status.READY).values_list(
            "algorithm", "version"):
        if number > active.get(name, 0) and number > newest.get(name, 0):
            newest[name] = number
    return sorted(newest.items())

