"""Simulated traffic: demo users ask for recommendations through the real API and answer what they are shown as
the demo world's hidden tastes say (``manage.py simulate_traffic``; issue 12, point 6).

Each simulated day the same sample of demo users each open the app ``1 + Poisson(EXTRA_SESSIONS)`` times. A
session is one ``POST /api/v1/recommendations`` for the user, authenticated as them, through the real views,
serializers, services and throttles (an in-process APIClient); every answer is recorded as an Impression as
in production. The user then answers each shown item (``item_answer``) and each event is a
``POST /api/v1/interactions`` naming the answer's recommendation_id, so it is attributed to that impression:

- they look at the item at rank r with chance 1 / log2(r + 1) (position bias: rank 1 always, rank 10 in 29%);
- having looked, they click (a ``view``) with a chance that rises with the world's hidden match of user and
  item (in [0, 1], profiles.demo.oracle) above the user's typical match (their median over the items of that
  type), logistic and as steep as the seeder's choices (TASTE_STRENGTH): measured against their own usual
  fare, a user's clicks say how well the ranking suits them, not how easy they are to please;
- having clicked, they go on to at most one of the channel's ``engaged`` kinds (like, save, apply; follow,
  invest_interest, contact ...) with the seeder's chances, base + extra * match (profiles.demo.world._choose);
- having looked without clicking, they dismiss an item below their typical match at the channel's dismiss
  rate.

The other side answers back. When a member's event is an application (a developer's ``apply`` to a position) or
a contact (an investor's of a startup, a founder's of a developer or investor), its target accepts it with the
seeder's chance (profiles.demo.world.accept_chance of the target's own hidden match of whoever asked;
WorldOracle.acceptance says who accepts what, as the seeder does: the lead founder of the position's startup,
or of the startup contacted, accepts the developer or investor; a contacted developer or investor accepts the
founder's first startup): a ``POST /api/v1/interactions`` of kind ``accept`` authenticated as the target (the
API checks that it answers that application or contact), right after the event it answers,
and, like the rest of the day's rows, moved back with the day. Accepts answer no recommendation (they are not
attributed); the tallies count the applications and contacts made and how many were accepted, by the variant of
the member who asked.

Days. The days run one after another, now; the rows a day wrote, its impressions and interactions (by id,
nothing else), then have their created_at moved back by one amount, so that they keep their order and
spacing and land on their day: day d of N on the date N - d days before today, from ``anchor`` on, where
``anchor`` is the simulation's start, or noon today if it started later in the day (so that a day's rows
never run past midnight into the next date). Day N stays today and never moves into the future. An event
moves with the impression it answers, so attribution windows see them seconds apart, as they happened.

Deterministic for a seed: the sample of users is drawn from ``seed``, and each (day, user) draws its sessions
and answers from its own random stream of ``seed``, four numbers per shown item whatever the user does with
it, and whether their applications and contacts are accepted from a second stream of its own, one number per
application or contact (so the sessions and answers are those drawn before accepts existed). The same world,
models and seed give the same requests and events; only ids and times differ. (An
experiment's split hangs on the experiment's id, so a rerun with a new experiment splits users anew.)
"""
from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.db.models import F, Model
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from ml import evaluation
from ml.models import ModelVersion
from ml.platform_data import ROLE_ITEM_TYPES, item_key
from profiles.demo.oracle import ROLE_NAMES, TARGET_TYPES, Acceptance, WorldOracle
from profiles.demo.store import demo_users
from profiles.demo.world import CHANNELS, TASTE_STRENGTH, Channel
from profiles.models import OUTCOME_OF_KIND, Interaction, Outcome
from recsys_site.exceptions import Conflict, DomainError

from . import experiments
from .model_store import recheck_serving_models
from .models import Experiment, Impression

EXTRA_SESSIONS = 0.5  # mean of the Poisson sessions a user opens beyond the first, per day
# A look at an item of the user's typical match (their median over the items of its type) is a click this
# often; the odds rise e-fold per 1 / TASTE_STRENGTH of match above it, as the seeder's choices do (0.1 more
# match: 16%; 0.3 more: 40%).
CLICK_AT_TYPICAL = 0.1
VARIANT_NAME = "treatment"  # the one variant of an experiment the simulation creates; the rest is the control
VARIANT_SHARE = 0.5
# A simulated user makes a day's requests in milliseconds: the per-user rates that stop a real client's flood
# ("300/minute") would refuse them. Raised in this process only; the throttles still run and count.
SIMULATION_RATE = "1000000/hour"
# The rates a summary gives, each events of an outcome per item shown. Every like or apply follows a view of the
# same item in the same answer here, so views count the clicked items as online metrics do.
RATES = (("click_rate", Outcome.CLICK), ("positive_rate", Outcome.POSITIVE), ("conversion_rate", Outcome.CONVERSION))
MEMBERS_PER_TRANSACTION = 25  # members whose day commits at once (day_simulate says why)
ROWS_PER_UPDATE = 500  # ids per UPDATE when rows move to their day (SQLite caps a statement's parameters)

User = get_user_model()


@dataclass(frozen=True)
class Member:
    """One simulated user: ``index`` (their place in the sample) names their random streams."""

    index: int
    user: AbstractBaseUser
    role: str
    typical: dict[str, float]  # item type -> the user's median match over the world's items of that type


@dataclass
class Tally:
    """What the API recorded: answers, items in them, and the attributed events by outcome."""

    impressions: int = 0
    items_shown: int = 0
    outcomes: Counter = field(default_factory=Counter)  # Outcome -> events
    asked: int = 0  # applications and contacts made, each of which its target may accept
    accepted: int = 0  # of them, those the target accepted

    @property
    def events(self) -> int:
        return sum(self.outcomes.values())

    def rate(self, outcome: str) -> float:
        """Events of ``outcome`` per item shown."""
        return self.outcomes[outcome] / self.items_shown if self.items_shown else 0.0

    @property
    def acceptance_rate(self) -> float:
        """Accepted applications and contacts per application or contact made."""
        return self.accepted / self.asked if self.asked else 0.0

    def add(self, other: Tally) -> None:
        self.impressions += other.impressions
        self.items_shown += other.items_shown
        self.outcomes.update(other.outcomes)
        self.asked += other.asked
        self.accepted += other.accepted


@dataclass
class DayReport:
    day: int
    days: int
    users: int
    date: str  # ISO date the day's rows were moved to
    tally: Tally


@dataclass
class SimulationReport:
    days: list[DayReport]
    users: int
    total: Tally
    by_variant: dict[str, Tally]  # variant ("control", ...) -> its answers; empty without an experiment
    experiment: Experiment | None


@dataclass
class _Written:
    """Rows written, by id: what moves to the day."""

    impressions: list[str] = field(default_factory=list)
    interactions: list[int] = field(default_factory=list)


# ---------------------------------------------------------------- the whole run


def traffic_simulate(*, days: int, users: int, seed: int = 0, demo_seed: int = evaluation.DEMO_SEED,
                     experiment_weights: dict | None = None, experiment_name: str | None = None,
                     progress: Callable[[DayReport], None] | None = None) -> SimulationReport:
    """Simulate ``days`` days of ``users`` demo users (see the module's docstring); ``progress`` after each day.

    Conflict when the data is not the demo world of ``demo_seed``, no model is trained or answers are not
    recorded. ``experiment_weights``: the running experiment, or else a new one with one variant of these
    weights beside the control (ValidationError for bad weights or a name in use). The report names the
    experiment the traffic took part in: that one, or without ``experiment_weights`` any that runs."""
    if days < 1 or users < 1:
        raise DomainError(f"Simulate at least one day and one user (got {days} days, {users} users).")
    oracle = demo_world(demo_seed=demo_seed)
    _require_serving()
    members = simulation_members(count=users, seed=seed, oracle=oracle)
    experiment = (simulation_experiment(weights=experiment_weights, name=experiment_name)
                  if experiment_weights is not None else _running())  # serving puts the traffic into it
    report = SimulationReport([], len(members), Tally(), {}, experiment)
    anchor = _anchor(timezone.now())
    client = APIClient()
    with _in_process_settings():
        for day in range(1, days + 1):
            starts = anchor - timedelta(days=days - day)  # where the day's rows will begin
            tally = day_simulate(client=client, oracle=oracle, members=members, seed=seed, day=day,
                                 back=timezone.now() - starts, by_variant=report.by_variant)
            report.days.append(DayReport(day, days, len(members), starts.date().isoformat(), tally))
            report.total.add(tally)
            if progress:
                progress(report.days[-1])
    return report


def demo_world(*, demo_seed: int) -> WorldOracle:
    oracle, why = evaluation.demo_oracle(demo_seed)
    if oracle is None:
        raise Conflict(f"Traffic is simulated on a demo world only: {why} (seed one with manage.py seed_demo, or "
                       "pass the --demo-seed it was seeded with).")
    return oracle


def _require_serving() -> None:
    if not ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).exists():
        raise Conflict("No model is trained: the simulated users would only see the popular fallback. Run "
                       "manage.py train_models first.")
    if not settings.RECORD_IMPRESSIONS:
        raise Conflict("RECORD_IMPRESSIONS is off: answers are not recorded, so no event could be attributed.")


def _anchor(now: datetime) -> datetime:
    """When each simulated day's rows start, on today's UTC date (online metrics' days are UTC dates): now,
    or noon if now is later."""
    now = now.astimezone(UTC)
    return min(now, now.replace(hour=12, minute=0, second=0, microsecond=0))


def _in_process_settings():
    """For this process only: the throttle rates raised (SIMULATION_RATE says why); each answer's impression
    written as it is made, on this thread, since the events that answer it name it at once and a background
    writer would race them; and the in-process client's host allowed, as the test runner allows it."""
    rest = settings.REST_FRAMEWORK
    rates = {**rest["DEFAULT_THROTTLE_RATES"], "write": SIMULATION_RATE, "recommendations": SIMULATION_RATE}
    return override_settings(REST_FRAMEWORK={**rest, "DEFAULT_THROTTLE_RATES": rates}, IMPRESSION_FLUSH_SECONDS=0,
                             ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver"])


def simulation_members(*, count: int, seed: int, oracle: WorldOracle) -> list[Member]:
    """``count`` demo users (all of them if there are fewer), a sample fixed by ``seed``, in id order."""
    ids = sorted(demo_users().values_list("pk", flat=True))
    rng = np.random.default_rng([seed, 0])
    chosen = sorted(int(ids[n]) for n in rng.choice(len(ids), size=min(count, len(ids)), replace=False))
    rows = User.objects.in_bulk(chosen)
    return [Member(index, rows[pk], oracle.role(pk), typical_matches(oracle=oracle, user_id=pk))
            for index, pk in enumerate(chosen)]


def typical_matches(*, oracle: WorldOracle, user_id: int) -> dict[str, float]:
    """{item type: the user's median match} over every item of each type their role is recommended."""
    return {item_type: float(np.median(oracle.scores(user_id, oracle.item_keys(item_type))))
            for item_type in ROLE_ITEM_TYPES[oracle.role(user_id)]}


def simulation_experiment(*, weights: dict, name: str | None) -> Experiment:
    """The running experiment, or a new one started: ``weights`` at VARIANT_SHARE beside the control."""
    running = _running()
    if running is not None:
        return running
    created = experiments.experiment_create(
        name=name or _free_name(f"simulated: {json.dumps(weights, sort_keys=True)}"),
        variants=[{"name": VARIANT_NAME, "share": VARIANT_SHARE, "weights": weights}])
    started = experiments.experiment_start(experiment=created)
    recheck_serving_models()  # this process splits its users from the first simulated request
    return started


def _running() -> Experiment | None:
    return Experiment.objects.filter(status=Experiment.Status.RUNNING).first()


def _free_name(name: str) -> str:
    """``name``, or ``name (2)``, ``(3)`` ... when an earlier simulation took it (names are unique)."""
    taken = set(Experiment.objects.filter(name__startswith=name).values_list("name", flat=True))
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name} ({n})"
    return candidate


def rows_move(*, written: _Written, back: timedelta) -> None:
    """Move a day's rows ``back`` in time, keeping their order and spacing."""
    moved: tuple[tuple[type[Model], Sequence[object]], ...] = ((Impression, written.impressions),
                                                               (Interaction, written.interactions))
    for model, ids in moved:
        for start in range(0, len(ids), ROWS_PER_UPDATE):
            model._default_manager.filter(pk__in=ids[start:start + ROWS_PER_UPDATE]).update(
                created_at=F("created_at") - back)


# ---------------------------------------------------------------- a day, a session, an item


def day_simulate(*, client: APIClient, oracle: WorldOracle, members: Sequence[Member], seed: int, day: int,
                 back: timedelta, by_variant: dict[str, Tally]) -> Tally:
    """Every member's sessions of ``day``, their rows moved ``back`` to the day; the day's tally (also added
    to ``by_variant``).

    MEMBERS_PER_TRANSACTION members' days are one transaction, their rows and the move together: a
    simulation stopped midway leaves no row at the real time; and one commit instead of one per request
    (on SQLite each commit syncs the disk, more time than the requests take), while other writers wait for
    the lock a second at most."""
    tally = Tally()
    for start in range(0, len(members), MEMBERS_PER_TRANSACTION):
        written = _Written()
        with transaction.atomic():
            for member in members[start:start + MEMBERS_PER_TRANSACTION]:
                member_day = member_day_simulate(client=client, oracle=oracle, member=member, seed=seed, day=day,
                                                 written=written, by_variant=by_variant)
                tally.add(member_day)
            rows_move(written=written, back=back)
    return tally


def member_day_simulate(*, client: APIClient, oracle: WorldOracle, member: Member, seed: int, day: int,
                        written: _Written, by_variant: dict[str, Tally]) -> Tally:
    """One member's sessions of ``day``, drawn from their own random streams (answers; accepts of them)."""
    rng = np.random.default_rng([seed, 1, day, member.index])
    accepts = np.random.default_rng([seed, 2, day, member.index])
    client.force_authenticate(user=member.user)
    tally = Tally()
    for _ in range(1 + int(rng.poisson(EXTRA_SESSIONS))):
        session, variant = session_simulate(client=client, oracle=oracle, member=member, rng=rng, written=written,
                                            accepts=accepts)
        tally.add(session)
        if variant is not None:
            by_variant.setdefault(variant, Tally()).add(session)
    return tally


def session_simulate(*, client: APIClient, oracle: WorldOracle, member: Member, rng: np.random.Generator,
                     written: _Written, accepts: np.random.Generator) -> tuple[Tally, str | None]:
    """One answer, the member's events on it and the other side's accepts of them; (its tally, the member's
    variant or None). ``accepts`` draws whether each application or contact is accepted."""
    user_id = member.user.pk
    answer = _post(client, "/api/v1/recommendations", {"user_id": user_id, "user_type": member.role}, 200)
    written.impressions.append(answer["recommendation_id"])
    shown = answer["results"]
    tally = Tally(impressions=1, items_shown=len(shown))
    matches = oracle.scores(user_id, [item_key(r["item_type"], r["item_id"]) for r in shown]) if shown else np.zeros(0)
    draws = rng.random((len(shown), 4))  # drawn whatever is done with them: later items keep their numbers
    for result, match, item_draws in zip(shown, matches, draws, strict=True):
        channel = channel_of(member.role, result["item_type"])
        for kind in item_answer(channel=channel, match=float(match), typical=member.typical[result["item_type"]],
                                rank=result["rank"], draws=item_draws):
            event = {"item_type": result["item_type"], "item_id": result["item_id"], "kind": kind,
                     "recommendation_id": answer["recommendation_id"]}
            written.interactions.append(_post(client, "/api/v1/interactions", event, 201)["id"])
            tally.outcomes[OUTCOME_OF_KIND[kind]] += 1
            acceptance = oracle.acceptance(user_id, kind, item_key(result["item_type"], result["item_id"]))
            if acceptance is not None:
                tally.asked += 1
                if accepts.random() < acceptance.chance:
                    written.interactions.append(accept_post(client=client, acceptance=acceptance, member=member))
                    tally.accepted += 1
    experiment = answer.get("experiment")
    return tally, experiment["variant"] if experiment else None


def accept_post(*, client: APIClient, acceptance: Acceptance, member: Member) -> int:
    """The target's accept of the member's application or contact, posted as the target; the event's id. The
    client is the member's again afterwards."""
    item_type, item_id = acceptance.item_key.split(":")
    client.force_authenticate(user=User.objects.get(pk=acceptance.user_id))
    try:
        return _post(client, "/api/v1/interactions", {"item_type": item_type, "item_id": int(item_id),
                                                      "kind": "accept"}, 201)["id"]
    finally:
        client.force_authenticate(user=member.user)


def _post(client: APIClient, path: str, body: dict, expected: int) -> dict:
    # secure: a production configuration redirects plain HTTP to HTTPS.
    response = client.post(path, body, format="json", secure=True)
    if response.status_code != expected:
        raise Conflict(f"POST {path} answered {response.status_code} to the simulation: "
                       f"{response.content.decode()[:500]}")
    return response.json()


_CHANNELS = {(ROLE_NAMES[c.role], name): c for c in CHANNELS for name, code in TARGET_TYPES.items()
             if c.target_type == code}


def channel_of(role: str, item_type: str) -> Channel:
    """The demo world's channel of a ``role`` acting on an ``item_type``."""
    return _CHANNELS[role, item_type]


def look_chance(rank: int) -> float:
    return 1.0 / math.log2(rank + 1)


def click_chance(*, match: float, typical: float) -> float:
    """Logistic in the match above the user's typical one: CLICK_AT_TYPICAL there, TASTE_STRENGTH steep."""
    return 1.0 / (1.0 + math.exp(-(TASTE_STRENGTH * (match - typical) + _CLICK_LOGIT)))


_CLICK_LOGIT = math.log(CLICK_AT_TYPICAL / (1 - CLICK_AT_TYPICAL))


def item_answer(*, channel: Channel, match: float, typical: float, rank: int, draws: Sequence[float]) -> list[str]:
    """The kinds of the events a user makes on one item shown at ``rank``, in order: [], ["view"],
    ["view", "apply"], ["dismiss"] ...; ``match`` the item's hidden match, ``typical`` the user's median one;
    ``draws`` four uniform numbers (look, click, engage, dismiss)."""
    look, click, engage, dismiss = draws
    if look >= look_chance(rank):
        return []
    if click < click_chance(match=match, typical=typical):
        return ["view", *engaged_kind(channel=channel, match=match, draw=engage)]
    if match < typical and dismiss < channel.dismiss_rate:
        return ["dismiss"]
    return []


def engaged_kind(*, channel: Channel, match: float, draw: float) -> list[str]:
    """At most one of the channel's engaged kinds, each with chance base + extra * match, as the seeder picks."""
    threshold = 0.0
    for kind, base, extra in channel.engaged:
        threshold += base + extra * match
        if draw < threshold:
            return [kind]
    return []
