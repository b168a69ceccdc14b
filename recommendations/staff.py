"""Staff pages at /staff/: find a user, see their recommendations beside their profile and history, try
other hybrid weights on them before saving (or go back to the tuned ones), follow training runs with
their loss curves, metrics and the set measured as served, read the online metrics and the experiments.

Thin views: a form validates, a service or selector does the work, a template shows it. Every page is
for staff only (anyone else is sent to the admin login) and every bad input ends as a message or a 404.
"""
import datetime as dt
from dataclasses import dataclass, field
from datetime import datetime

from django import forms
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from ml import evaluation, progress, tasks
from ml.core.ranker import MISSING_PATHS, PATH_ALL, PATH_COLD_START, PATH_POPULAR
from ml.core.registry import POPULARITY
from ml.models import BLENDED, Algorithm, HybridWeights, ModelVersion, TrainingRun, Trigger, algorithm_label
from ml.selectors import current_weights, weights_state
from ml.services import hybrid_weights_mode_set, hybrid_weights_set, normalised_weights
from ml.serving_set import RECIPROCAL
from ml.templatetags.what_if import what_if
from profiles.models import ItemType, Position, Role
from profiles.selectors import interaction_list, profile_of, role_of
from profiles.serializers import MAX_ID
from recsys_site.exceptions import DomainError, NotFound

from . import experiments, online, plots, selectors, services
from .models import Experiment

SEARCH_LIMIT = 50
RECOMMENDATIONS_SHOWN = 10
EVENTS_SHOWN = 25
RUNS_SHOWN = 20
VERSIONS_SHOWN = 30
VERSIONS_CHARTED_PER_ALGORITHM = 3
LOSS_RUNS_SHOWN = 3  # the newest runs' loss curves: a run's fits make a figure each
TABLE_METRICS = ["ndcg", "precision", "recall", "map", "hit", "mrr", "coverage", "novelty", "diversity"]
ONLINE_DAYS = 30  # the online metrics' default window: the last 30 days, today included
ONLINE_MAX_DAYS = 366  # a longer window would plot more days than the chart has pixels for
RANKS_SHOWN = 20
# The outcomes the online tables show, each as its count and its rate per item shown.
OUTCOMES = (("clicks", "click_rate", "Click"), ("positives", "positive_rate", "Positive"),
            ("conversions", "conversion_rate", "Conversion"), ("dismissals", "dismissal_rate", "Dismissal"))

# What each weight blends: the algorithms and item popularity, which the ranker holds itself.
BLENDED_LABELS = [*Algorithm.choices, (POPULARITY, "Popularity")]
# The columns of a recommendation's scores (services.Recommendation.scores), in their order, headed short.
SCORE_COLUMNS = [("content_based", "Content"), ("collaborative", "Collab."), ("two_tower", "Two-Tower"),
                 ("ease", "EASE"), ("rp3beta", "RP3beta"), (POPULARITY, "Popular"), (RECIPROCAL, "Recipr.")]

FALLBACK_EXPLAINED = {
    PATH_ALL: "every serving algorithm with a weight above 0",
    PATH_COLD_START: "no interactions yet: content-based only",
    PATH_POPULAR: "nothing personal to score (no content model and no history): the most popular items",
    **{path: f"without {name} (no active version, or it cannot score this user)"
       for name, path in MISSING_PATHS.items()},
}


# ---------------------------------------------------------------- forms


class UserSearchForm(forms.Form):
    q = forms.CharField(max_length=150, required=False, strip=True, label="Username, e-mail or user id")


class WeightsForm(forms.Form):
    """A weight for every algorithm and popularity; valid when the registry's rules accept them, normalised to
    sum 1."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, label in BLENDED_LABELS:
            # FloatField refuses inf and nan by itself; the registry's rules are checked in clean().
            self.fields[name] = forms.FloatField(min_value=0, label=label,
                                                 widget=forms.NumberInput(attrs={"step": "any"}))

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            try:
                cleaned["weights"] = normalised_weights({name: cleaned[name] for name in BLENDED})
            except DomainError as exc:
                raise forms.ValidationError(exc.detail) from None
        return cleaned


class OnlineWindowForm(forms.Form):
    """A window of whole UTC days, both ends included (online metrics group impressions by UTC date); empty
    ends are the last ONLINE_DAYS days."""

    since = forms.DateField(required=False, label="From (UTC date)", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To (UTC date, included)",
                            widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        until = cleaned.get("until") or timezone.now().astimezone(dt.UTC).date()
        since = cleaned.get("since") or until - dt.timedelta(days=ONLINE_DAYS - 1)
        if since > until:
            raise forms.ValidationError(f"The window starts ({since}) after it ends ({until}).")
        if (until - since).days >= ONLINE_MAX_DAYS:
            raise forms.ValidationError(f"Choose at most {ONLINE_MAX_DAYS} days (got {(until - since).days + 1}).")
        cleaned.update(since=since, until=until)
        return cleaned

    def window(self) -> tuple[datetime, datetime]:
        """[since 00:00 UTC, the day after until 00:00 UTC): what online_metrics counts."""
        start = datetime.combine(self.cleaned_data["since"], dt.time(), tzinfo=dt.UTC)
        end = datetime.combine(self.cleaned_data["until"] + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        return start, end


class RetrainForm(forms.Form):
    algorithms = forms.MultipleChoiceField(choices=Algorithm.choices, widget=forms.CheckboxSelectMultiple,
                                           initial=Algorithm.values,
                                           error_messages={"required": "Choose at least one algorithm to retrain."})


# ---------------------------------------------------------------- reads shaped for the pages


def users_matching(query: str) -> list[tuple]:
    """(user, role) for users whose username or e-mail contains ``query``, or whose id it is."""
    match = Q(username__icontains=query) | Q(email__icontains=query)
    if query.isascii() and query.isdigit() and int(query) <= MAX_ID:
        match |= Q(pk=int(query))
    users = get_user_model().objects.select_related(*Role.values).filter(match).order_by("pk")[:SEARCH_LIMIT]
    return [(user, role_of(user)) for user in users]


def user_or_404(user_id: int):
    # Ids past the database's integer range would make the query itself fail (a 500) rather than miss.
    user = None
    if user_id <= MAX_ID:
        user = get_user_model().objects.select_related(*Role.values).filter(pk=user_id).first()
    if user is None:
        raise Http404(f"No user has id {user_id}.")
    return user


def profile_facts(user) -> list[tuple[str, str]]:
    """(label, text) rows describing the user's profile, whichever role it is; none without a profile.

    Beside what the user entered, what the engine matches them on: their record and declared terms as
    serving reads them (``selectors.user_profile``), the very terms the reasons beside the profile count
    ("Matches 2 of your 7 skills", ``ml.core.content``)."""
    role = role_of(user)
    if role is None:
        return []
    matched = selectors.user_profile(user_id=user.pk, role=role)
    declared = _by_namespace(matched.terms) if matched else {}
    facts = {Role.DEVELOPER: _developer_facts, Role.FOUNDER: _founder_facts,
             Role.INVESTOR: _investor_facts}[Role(role)](profile_of(user), declared, matched.record if matched else {})
    return [(label, str(value) if value not in ("", None) else "—") for label, value in facts]


def _by_namespace(terms: list[str]) -> dict[str, list[str]]:
    """Content terms (``skill:python``) by namespace, each value once, sorted: {"skill": ["python"]}."""
    groups: dict[str, list[str]] = {}
    for term in sorted(set(terms)):
        namespace, _, value = term.partition(":")
        groups.setdefault(namespace, []).append(value)
    return groups


def _counted(values: list[str]) -> str:
    """"3: a, b, c": reasons give the count, so the profile does too."""
    return f"{len(values)}: {', '.join(values)}" if values else ""


def _developer_facts(developer, declared: dict[str, list[str]], record: dict) -> list[tuple[str, object]]:
    salary = f"{developer.desired_salary:,} USD" if developer.desired_salary else ""
    return [("Headline", developer.headline), ("Skills", _counted(declared.get("skill", []))),
            ("Years of experience", developer.years_experience),
            ("Preferred industries", _names(developer.preferred_industries)),
            ("Remote preference", developer.get_remote_preference_display()), ("Desired salary", salary),
            ("Location", developer.location)]


def _founder_facts(founder, declared: dict[str, list[str]], record: dict) -> list[tuple[str, object]]:
    # A founder is matched on their own skills and those their startups and open positions ask for, on their
    # startups' industries and stages, and on the checks their raising rounds take (ml.platform_data): their
    # reasons say so ("Matches 6 of the 31 skills you and your startups list", ml.core.explain's
    # CONTENT_WORDING) and count what the "Matched on" rows list (FOUNDER_MATCHED_ON says so on the page).
    startups = founder.startups.select_related("industry").order_by("name")
    checks = (f"{record['check_size_min']:,} – {record['check_size_max']:,} USD" if "check_size_min" in record
              else "")
    return [("Skills", _counted(sorted(skill.name for skill in founder.skills.all()))),
            ("Years of experience", founder.years_experience),
            ("Startups", "; ".join(_startup_text(startup) for startup in startups)),
            ("Matched on: skills", _counted(declared.get("skill", []))),
            ("Matched on: industries", ", ".join(declared.get("industry", []))),
            ("Matched on: stages", ", ".join(declared.get("stage", []))),
            ("Matched on: checks", checks),
            ("Location", founder.location)]


FOUNDER_MATCHED_ON = ("Matched on: what a founder's recommendations are ranked and explained by — their skills "
                      "and those their startups and open positions ask for, their startups' industries and "
                      "stages, and the checks their raising rounds take (5–25% of a round).")


def _startup_text(startup) -> str:
    raising = f", raising {startup.round_size:,} USD" if startup.raising and startup.round_size else (
        ", raising" if startup.raising else "")
    return f"{startup.name} ({startup.industry.name}, {startup.get_stage_display()}{raising})"


def _investor_facts(investor, declared: dict[str, list[str]], record: dict) -> list[tuple[str, object]]:
    return [("Firm", investor.firm), ("Preferred industries", _names(investor.preferred_industries)),
            ("Preferred stages", ", ".join(investor.preferred_stages)),
            ("Check size", f"{investor.check_size_min:,} – {investor.check_size_max:,} USD"),
            ("Location", investor.location)]


def _names(related) -> str:
    return ", ".join(str(row) for row in related.all())


@dataclass
class Event:
    when: datetime
    kind: str
    item_type: str
    item_id: int
    title: str


def recent_events(user_id: int) -> list[Event]:
    events = interaction_list(user_id=user_id).select_related(
        "position__startup", "startup", "developer__user", "investor__user")[:EVENTS_SHOWN]
    return [Event(e.created_at, e.get_kind_display(), e.item_type, e.item_id, _target_title(e)) for e in events]


def _target_title(event) -> str:
    if event.position_id:
        return f"{event.position.title} at {event.position.startup.name}"
    if event.startup_id:
        return event.startup.name
    person = event.developer or event.investor
    label = event.developer.headline if event.developer_id else event.investor.firm
    return f"{label} ({person.user.get_username()})" if label else person.user.get_username()


def ranked_for(user, role: str, weights: dict[str, float] | None = None) -> services.Recommendations:
    """The ``role`` user's recommendations as the API answers them, with the saved weights unless ``weights``."""
    return services.recommendations_for_user(user_id=user.pk, user_type=role, limit=RECOMMENDATIONS_SHOWN,
                                             weights=weights)


@dataclass
class ShownItem:
    """A recommended item as the staff pages show it: a position with its startup's name (the answer's title
    is the position's own), and on the weights page the rank it had under the saved weights."""

    item: services.Recommendation
    startup: str = ""  # a position's startup
    before: int | None = None  # the rank under the current weights; None: new in the trial's list
    scores: list[float | None] = field(default_factory=list)  # in the order of score_columns' columns


def shown_items(answer: services.Recommendations, before: dict[tuple[str, int], int] | None = None,
                ) -> list[ShownItem]:
    """The answer's items with their positions' startups (one query), and each one's rank in ``before``."""
    positions = [r.item_id for r in answer.results if r.item_type == ItemType.POSITION]
    startups = dict(Position.objects.filter(pk__in=positions).values_list("pk", "startup__name")) if positions else {}
    return [ShownItem(r, startups.get(r.item_id, "") if r.item_type == ItemType.POSITION else "",
                      (before or {}).get((r.item_type, r.item_id))) for r in answer.results]


def score_columns(items: list[ShownItem]) -> list[tuple[str, str]]:
    """The SCORE_COLUMNS some item has a score in (an algorithm the answer did not use has none), each item's
    scores set in their order."""
    columns = [(name, label) for name, label in SCORE_COLUMNS
               if any(row.item.scores.get(name) is not None for row in items)]
    for row in items:
        row.scores = [row.item.scores.get(name) for name, _ in columns]
    return columns


def rank_moves(current: services.Recommendations, trial: services.Recommendations) -> list[ShownItem]:
    """Each trial result, with its rank under the current weights (None: not in that list)."""
    return shown_items(trial, {(r.item_type, r.item_id): r.rank for r in current.results})


@dataclass
class RunRow:
    run: TrainingRun
    seconds: float | None
    has_losses: bool
    versions: list[ModelVersion]  # what it trained: each one's final fit time and peak memory
    table: progress.ProgressTable  # its phases and each algorithm's progress in each

    @property
    def algorithm_labels(self) -> str:
        return ", ".join(algorithm_label(a) for a in self.run.algorithms)

    @property
    def skipped(self) -> list[tuple[str, str]]:
        return [(algorithm_label(a), reason) for a, reason in self.run.skipped.items()]

    @property
    def loss_caption(self) -> str:
        fits = progress.loss_fits(self.run.progress)
        return f"{len(fits)} fit{'s' if len(fits) != 1 else ''} in epochs"


def training_run_rows() -> list[RunRow]:
    runs = selectors.training_run_list().select_related("requested_by")[:RUNS_SHOWN]
    return [run_row(run) for run in runs]


def run_row(run: TrainingRun) -> RunRow:
    versions = sorted(run.model_versions.all(), key=lambda v: Algorithm.values.index(v.algorithm))
    return RunRow(run, _seconds(run), bool(progress.loss_fits(run.progress)), versions,
                  progress.progress_table(run.progress, running=bool(run.in_flight)))


def _seconds(run: TrainingRun) -> float | None:
    """How long the run took, or has taken so far while it runs."""
    if run.started_at and (run.finished_at or run.in_flight):
        return round(((run.finished_at or timezone.now()) - run.started_at).total_seconds(), 1)
    return None


def version_rows() -> list[tuple[ModelVersion, list]]:
    """The newest model versions, each with its held-out metrics in TABLE_METRICS order."""
    versions = ModelVersion.objects.order_by("-created_at", "-id")[:VERSIONS_SHOWN]
    return [(version, [version.metrics.get(name) for name in TABLE_METRICS]) for version in versions]


def charted_versions() -> list[tuple[str, int, dict]]:
    """(algorithm, version, metrics) of each algorithm's newest versions that have metrics, oldest first."""
    charted = []
    for algorithm in Algorithm.values:
        newest = (ModelVersion.objects.filter(algorithm=algorithm).exclude(metrics={}).exclude(metrics__has_key="error")
                  .order_by("-version").values_list("version", "metrics")[:VERSIONS_CHARTED_PER_ALGORITHM])
        charted += [(algorithm, version, metrics) for version, metrics in reversed(newest)]
    return charted


@dataclass
class WeightRow:
    algorithm: str
    label: str
    in_force: float
    tuned: float | None
    tuned_by_role: list[float]  # in the order of the panel's "roles"


def weights_panel() -> dict:
    """The weights' mode, the weights in force beside the tuned ones (and each role's own, where tuning gave
    a role its own), for the weights and training-runs pages."""
    state = weights_state()
    tuned = state["tuned"]
    by_role = (tuned or {}).get("by_role", {})
    rows = [WeightRow(name, label, state["weights"][name], tuned["weights"][name] if tuned else None,
                      [weights[name] for weights in by_role.values()])
            for name, label in BLENDED_LABELS]
    last = state["history"][0] if state["history"] else None
    return {"mode": state["mode"], "manual": state["mode"] == HybridWeights.Mode.MANUAL, "tuned": tuned,
            "roles": list(by_role), "rows": rows, "last_change": last}


@dataclass
class ServedRow:
    """One group of held-out users: NDCG@10 served, of popularity and of the oracle, and the ratios."""

    group: str
    users: int
    served: float | None
    popularity: float | None
    oracle: float | None
    vs_popularity: float | None
    vs_oracle: float | None


def latest_served_run() -> TrainingRun | None:
    """The newest run measured as served (whether or not its versions were activated: the page says)."""
    return (TrainingRun.objects.filter(status=TrainingRun.Status.SUCCEEDED, served__isnull=False)
            .order_by("-created_at", "-id").first())


def served_rows(served: dict) -> list[ServedRow]:
    """All users, then each role, then each segment of a run's served evaluation."""
    groups = [("all users", ["all"])]
    groups += [(role, ["by_role", role]) for role in served["metrics"]["by_role"]]
    groups += [(segment, ["by_segment", segment]) for segment in served["metrics"]["by_segment"]]
    rows = []
    for label, path in groups:
        group, popular, oracle = (_at(served.get(key), path) for key in ("metrics", "popularity", "oracle"))
        ndcg = group.get("ndcg")
        rows.append(ServedRow(label, group.get("users", 0), ndcg, popular.get("ndcg"), oracle.get("ndcg"),
                              evaluation.ratio(ndcg, popular.get("ndcg")), evaluation.ratio(ndcg, oracle.get("ndcg"))))
    return rows


def _at(metrics: dict | None, path: list[str]) -> dict:
    # The oracle is null off the demo world: its cells are then empty, not an error.
    for key in path:
        metrics = (metrics or {}).get(key)
    return metrics or {}


@dataclass
class RateCell:
    count: int
    rate: str  # "12.34%"
    interval: str  # "11.02–13.71%"


@dataclass
class OnlineRow:
    """One group of the online metrics, as the tables show it."""

    key: str
    impressions: int
    items_shown: int
    outcomes: list[RateCell]  # in OUTCOMES order


def percent(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def interval_text(interval) -> str:
    return "—" if not interval else f"{interval[0] * 100:.2f}–{interval[1] * 100:.2f}%"


def points(difference: float) -> str:
    """A difference of two rates in percentage points, signed: "+1.25 pts"."""
    return f"{difference * 100:+.2f} pts"


def online_rows(groups: list[dict]) -> list[OnlineRow]:
    return [OnlineRow(group["key"], group["impressions"], group["items_shown"],
                      [RateCell(group[count], percent(group[rate]), interval_text(group["intervals"][rate]))
                       for count, rate, _ in OUTCOMES])
            for group in groups]


def variant_label(key: str) -> str:
    return "outside experiments" if key == online.NO_EXPERIMENT else key


@dataclass
class ArmRow:
    """A variant of an experiment's results (or its control), as the results tables show it."""

    name: str
    is_control: bool
    users: int
    impressions: int
    items_shown: int
    primary: tuple[str, str]  # the primary metric's (rate, interval)
    primary_difference: dict  # as in every_rate; {} for the control or where there is nothing to compare
    users_needed: int | None
    every_rate: list[tuple[tuple[str, str], dict]]  # per rate of OUTCOMES: ((rate, interval), difference)


def arm_rows(results: dict) -> list[ArmRow]:
    """The control, then each variant: its users, rates with intervals and differences vs control, the primary
    metric's apart."""
    alpha, metric = results["alpha"], results["experiment"]["metric"]
    rows = []
    for arm, is_control in [(results["control"], True)] + [(v, False) for v in results["variants"]]:
        rates = {rate: (percent(arm["rates"].get(rate)), interval_text(arm["intervals"].get(rate)))
                 for _, rate, _ in OUTCOMES}
        differences = {rate: _difference((arm.get("difference_vs_control") or {}).get(rate), alpha,
                                         higher_is_better=rate != "dismissal_rate")
                       for _, rate, _ in OUTCOMES}
        rows.append(ArmRow(arm["name"], is_control, arm["users"], arm["impressions"], arm["items_shown"],
                           rates[metric], differences[metric], arm.get("users_needed"),
                           [(rates[rate], differences[rate]) for _, rate, _ in OUTCOMES]))
    return rows


def _difference(tested: dict | None, alpha: float, *, higher_is_better: bool) -> dict:
    """A difference vs control as shown: in points, its interval, p, and "up" (better: green) or "down"
    (worse: red) only when significant, since a difference inside the noise is no direction."""
    if not tested:
        return {}
    low, high = tested["interval"]
    better = (tested["difference"] > 0) == higher_is_better
    return {"difference": points(tested["difference"]), "interval": f"{points(low)} to {points(high)}",
            "p_value": tested["p_value"], "p_text": p_text(tested["p_value"]),
            "css": "" if tested["p_value"] >= alpha or tested["difference"] == 0 else "up" if better else "down"}


def p_text(p_value: float) -> str:
    return "< 0.0001" if p_value < 0.0001 else f"{p_value:.4f}"


def variant_shares(experiment: Experiment) -> dict[str, float]:
    """Each variant's share of the users, and the control's: the rest."""
    shares = {variant["name"]: float(variant["share"]) for variant in experiment.variants}
    return {experiments.CONTROL: max(0.0, 1 - sum(shares.values())), **shares}


def experiment_or_404(experiment_id: int) -> Experiment:
    try:
        return experiments.experiment_get(experiment_id=experiment_id)
    except NotFound as exc:
        raise Http404(exc.detail) from None


def admin_url(name: str, *args) -> str | None:
    """The admin page ``name``, or None while the model has no admin (a missing link, not a 500)."""
    try:
        return reverse(f"admin:{name}", args=args)
    except NoReverseMatch:
        return None


# ---------------------------------------------------------------- pages


@staff_member_required
def user_search(request):
    form = UserSearchForm(request.GET or None)
    query = form.cleaned_data["q"] if form.is_valid() else ""
    return render(request, "recommendations/staff/user_search.html", {
        "form": form, "query": query, "users": users_matching(query) if query else [], "limit": SEARCH_LIMIT})


@staff_member_required
def user_detail(request, user_id: int):
    user = user_or_404(user_id)
    role = role_of(user)
    answer = ranked_for(user, role) if role else None
    items = shown_items(answer) if answer else []
    return render(request, "recommendations/staff/user_detail.html", {
        "subject": user, "role": role, "facts": profile_facts(user), "events": recent_events(user.pk),
        "facts_note": FOUNDER_MATCHED_ON if role == Role.FOUNDER else "",
        "answer": answer, "items": items, "score_columns": score_columns(items),
        "fallbacks": FALLBACK_EXPLAINED})


@staff_member_required
def weights_trial(request, user_id: int):
    """GET tries the weights in the query string on this user, and measures them offline beside those in force
    (the what-if); POST saves them as the hybrid's weights."""
    user = user_or_404(user_id)
    if request.method == "POST":
        form = WeightsForm(request.POST)
        if form.is_valid():
            saved = hybrid_weights_set(weights=form.cleaned_data["weights"], changed_by=request.user,
                                       note=f"tried on user {user.pk} in the staff pages")
            messages.success(request, f"Saved: {_weights_text(saved.as_dict())}. Every recommendation uses "
                                      "them from now on.")
            return redirect("staff:user-weights", user_id=user.pk)
    else:
        form = WeightsForm(request.GET or None, initial=current_weights())
    trial_weights = form.cleaned_data["weights"] if form.is_bound and form.is_valid() else None
    role = role_of(user)
    current = ranked_for(user, role) if role else None
    trial = ranked_for(user, role, trial_weights) if role and current and trial_weights else None
    return render(request, "recommendations/staff/weights.html", {
        "subject": user, "role": role, "form": form, "saved_weights": current_weights(),
        "weights": weights_panel(), "trial_weights": trial_weights, "current": current, "trial": trial,
        "current_items": shown_items(current) if current else [],
        "moves": rank_moves(current, trial) if current and trial else [], "fallbacks": FALLBACK_EXPLAINED,
        "what_if": what_if(trial_weights) if trial_weights else None})


def _weights_text(weights: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.2f}" for name, value in weights.items())


@staff_member_required
@require_POST
def apply_tuned_weights(request):
    """Switch the weights to tuned mode (each training's tuned weights serve), then back to the page asking."""
    hybrid_weights_mode_set(mode=HybridWeights.Mode.TUNED, changed_by=request.user,
                            note="applied the tuned weights in the staff pages")
    messages.success(request, f"Tuned weights applied: {_weights_text(current_weights())}. From now on every "
                              "recommendation uses the weights each training tunes.")
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        back = "staff:training-runs"
    return redirect(back)


@staff_member_required
def training_runs(request):
    rows = training_run_rows()
    served_run = latest_served_run()
    live = next((row for row in rows if row.run.in_flight), None)
    return render(request, "recommendations/staff/training_runs.html", {
        "rows": rows, "loss_rows": [row for row in rows if row.has_losses][:LOSS_RUNS_SHOWN], "live": live,
        "in_flight": live is not None, "retrain_form": RetrainForm(),
        "versions": version_rows(), "metric_names": TABLE_METRICS, "has_chart": bool(charted_versions()),
        "weights": weights_panel(), "served_run": served_run,
        "served_rows": served_rows(served_run.served) if served_run else []})


@staff_member_required
@require_POST
def retrain(request):
    """Force a training of the chosen algorithms now, like the admin's "retrain now"; the outcome is a message."""
    form = RetrainForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors["algorithms"]))
        return redirect("staff:training-runs")
    try:
        run = tasks.training_run_request(algorithms=form.cleaned_data["algorithms"], force_retrain=True,
                                         trigger=Trigger.ADMIN, requested_by=request.user)
    except DomainError as exc:  # 409 another run in flight, 503 broker down: both are the operator's to see
        messages.error(request, exc.detail)
    else:  # answered at once: the broker's worker, or without one a thread of this server, trains it
        labels = ", ".join(algorithm_label(a) for a in run.algorithms)
        messages.success(request, f"Training run {run.pk} ({labels}) is {run.status}: its progress is below."
                         if run.in_flight else f"Training run {run.pk} ({labels}) {run.status}.")
    return redirect("staff:training-runs")


@never_cache
@staff_member_required
def run_progress(request, run_id: int):
    """The run's status and its progress card as HTML, polled by the training-runs page while the run is in
    flight (it swaps the card in place, and reloads once when the run ends)."""
    run = selectors.training_run_list().filter(pk=run_id).first() if run_id <= MAX_ID else None
    if run is None:
        raise Http404(f"No training run has id {run_id}.")
    row = run_row(run)
    html = render_to_string("ml/_run_progress.html", {"run": run, "table": row.table, "seconds": row.seconds,
                                                     "live": True}, request)
    return JsonResponse({"id": run.pk, "status": run.status, "in_flight": bool(run.in_flight),
                         "phase": run.progress.get("phase_label"), "percent": row.table.percent,
                         "seconds": row.seconds, "html": html})


@never_cache
@staff_member_required
def run_loss_plot(request, run_id: int):
    run = TrainingRun.objects.filter(pk=run_id).first() if run_id <= MAX_ID else None
    fits = progress.loss_fits(run.progress) if run else []
    if not fits:
        raise Http404(f"Training run {run_id} recorded no per-epoch losses.")
    return HttpResponse(plots.loss_curves_png(dict(fits)), content_type="image/png")


@never_cache
@staff_member_required
def metrics_plot(request):
    versions = charted_versions()
    if not versions:
        raise Http404("No model version has held-out metrics yet.")
    return HttpResponse(plots.metrics_png(versions), content_type="image/png")


@never_cache
@staff_member_required
def served_plot(request, run_id: int):
    run = TrainingRun.objects.filter(pk=run_id).first() if run_id <= MAX_ID else None
    if run is None or not run.served:
        raise Http404(f"Training run {run_id} has no served evaluation.")
    return HttpResponse(plots.served_png(run.served), content_type="image/png")


@staff_member_required
def online_page(request):
    """Click, positive and conversion rates: per day and variant (plotted), by variant, role and rank."""
    form = OnlineWindowForm(request.GET)  # bound even when empty: empty ends are the defaults
    context = {"form": form, "outcomes": OUTCOMES, "max_rank": RANKS_SHOWN}
    if not form.is_valid():
        return render(request, "recommendations/staff/online.html", context)
    since, until = form.window()
    by_variant = online.online_metrics(since=since, until=until, group_by=["variant"])
    for group in by_variant:
        group["key"] = variant_label(group["key"])
    context.update(
        since=form.cleaned_data["since"], until=form.cleaned_data["until"], has_data=bool(by_variant),
        by_variant=online_rows(by_variant),
        by_role=online_rows(online.online_metrics(since=since, until=until, group_by=["role"])),
        by_rank=online_rows([group for group in online.online_metrics(since=since, until=until, group_by=["rank"])
                             if group["keys"]["rank"] <= RANKS_SHOWN]))
    return render(request, "recommendations/staff/online.html", context)


@never_cache
@staff_member_required
def online_plot(request):
    form = OnlineWindowForm(request.GET)
    if not form.is_valid():
        raise Http404(" ".join(form.non_field_errors()) or "Give since and until as dates (YYYY-MM-DD).")
    since, until = form.window()
    groups = online.online_metrics(since=since, until=until, group_by=["day", "variant"])
    if not groups:
        raise Http404("No impressions in this window.")
    return HttpResponse(plots.online_rates_png(groups), content_type="image/png")


@staff_member_required
def experiment_list(request):
    rows = [(experiment, variant_shares(experiment)) for experiment in experiments.experiment_list()]
    return render(request, "recommendations/staff/experiments.html", {
        "rows": rows, "admin_add": admin_url("recommendations_experiment_add")})


@staff_member_required
def experiment_detail(request, experiment_id: int):
    experiment = experiment_or_404(experiment_id)
    shares = variant_shares(experiment)
    started = experiment.started_at is not None
    results = experiments.experiment_results(experiment=experiment) if started else None
    return render(request, "recommendations/staff/experiment_detail.html", {
        "experiment": experiment, "shares": shares, "control_share": shares[experiments.CONTROL],
        "results": results, "arms": arm_rows(results) if results else [], "outcomes": OUTCOMES,
        "primary": dict(Experiment.Metric.choices)[experiment.metric],
        "has_plot": bool(results and any(arm["items_shown"] for arm in [results["control"], *results["variants"]])),
        "admin_change": admin_url("recommendations_experiment_change", experiment.pk)})


@never_cache
@staff_member_required
def experiment_plot(request, experiment_id: int):
    experiment = experiment_or_404(experiment_id)
    if experiment.started_at is None:
        raise Http404(f"Experiment {experiment_id} has not started: it has no results.")
    return HttpResponse(plots.experiment_png(experiments.experiment_results(experiment=experiment)),
                        content_type="image/png")
