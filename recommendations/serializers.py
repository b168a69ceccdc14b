"""Shapes of the model and recommendation endpoints (docs/api.md): requests validated here, answers
shown here; the services never see unvalidated input."""
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta

from django.db.models import Model
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ml.core.diversify import DEFAULT_DIVERSITY, DEFAULT_MAX_PER_STARTUP
from ml.core.ranker import MISSING_PATHS, PATH_ALL, PATH_COLD_START, PATH_POPULAR
from ml.core.registry import COLLABORATIVE, CONTENT, EASE, POPULARITY, RP3BETA, TWO_TOWER
from ml.evaluation import ROLES, SEGMENTS
from ml.models import BLENDED, Algorithm, HybridWeights, TrainingRun
from ml.progress import PHASES
from ml.serving_set import MARKET, RECIPROCAL
from profiles.models import Developer, Founder, InteractionKind, Investor, ItemType, Position, Role, Startup, a_or_an
from profiles.serializers import MAX_ID, MAX_LIST_ITEMS

from .models import Experiment

MAX_TRAINING_INTERACTIONS = 100_000
PERSON_ITEM_TYPES = {ItemType.DEVELOPER, ItemType.INVESTOR}


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, so a misspelt option is a 400 naming it, not silently ignored."""

    def to_internal_value(self, data):
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, Mapping) else []
        if unknown:
            raise serializers.ValidationError(
                {name: f"Unknown field; accepted: {', '.join(self.fields)}." for name in unknown})
        return super().to_internal_value(data)


def algorithm_choice(**kwargs) -> serializers.ChoiceField:
    return serializers.ChoiceField(choices=Algorithm.choices, **kwargs)


def per_algorithm(name: str, make_field, doc: str = "") -> type[serializers.Serializer]:
    """A serializer named ``name`` with one field per algorithm (Algorithm.values)."""
    return one_field_each(name, Algorithm.values, make_field, doc)


def one_field_each(name: str, keys, make_field, doc: str = "") -> type[serializers.Serializer]:
    """A serializer named ``name`` with a field ``make_field()`` for each of ``keys``: a JSON object whose
    keys are fixed, described key by key in the schema."""
    return type(name, (serializers.Serializer,), {"__doc__": doc, **{key: make_field() for key in keys}})


WeightsSerializer = per_algorithm("WeightsSerializer", serializers.FloatField)
BlendWeightsSerializer = one_field_each("BlendWeightsSerializer", BLENDED, serializers.FloatField,
                                        "A weight for every algorithm and for item popularity, summing to 1.")
ModelVersionsSerializer = per_algorithm("ModelVersionsSerializer", lambda: serializers.IntegerField(allow_null=True),
                                        "The version of each algorithm that serves; null where none does.")
ScoresSerializer = one_field_each(
    "ScoresSerializer", [*Algorithm.values, RECIPROCAL], lambda: serializers.FloatField(allow_null=True),
    "Each algorithm's score of the item (z-scored per user), null where it was not used; and reciprocal: the "
    "other side's interest in the asker, z-scored over the candidates, which the item's score adds times the "
    "RECIPROCAL_WEIGHT setting: the content model's best score of the asker's side for the candidate as a user "
    "(a founder's startups and positions for a developer or investor, a developer for a position's founders), "
    "null where nobody must answer (startups) or it is unknown.")


# ---------------------------------------------------------------- recommendations


class RecommendationRequestSerializer(StrictSerializer):
    user_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    user_type = serializers.ChoiceField(choices=Role.choices)
    limit = serializers.IntegerField(min_value=1, max_value=100, default=10)
    item_types = serializers.ListField(child=serializers.ChoiceField(choices=ItemType.choices), allow_empty=False,
                                       max_length=MAX_LIST_ITEMS, required=False,
                                       help_text="Narrow the answer to some of your item types.")
    exclude_seen = serializers.BooleanField(default=True, help_text="Leave out items you interacted with.")
    explain = serializers.BooleanField(default=True, help_text="Give reasons with each item.")
    diversity = serializers.FloatField(
        min_value=0.0, max_value=1.0, default=DEFAULT_DIVERSITY,
        help_text="0-1: how far to trade relevance for variety (maximal marginal relevance on the items' "
                  "content vectors); 0 is the ranking by score, 1 the most diverse. The default was chosen "
                  "by measurement.")
    max_per_startup = serializers.IntegerField(
        min_value=1, max_value=100, default=DEFAULT_MAX_PER_STARTUP, allow_null=True,
        help_text="At most this many results of one startup (the startup and its positions); people are not "
                  "limited. Null or absent: no limit.")
    include_not_raising = serializers.BooleanField(
        default=False, help_text="Investors: also startups that are not raising now. By default an investor is "
                                 "shown only startups raising a round their check size fits.")


class ExplanationSerializer(serializers.Serializer):
    algorithm = serializers.ChoiceField(
        choices=[CONTENT, COLLABORATIVE, TWO_TOWER, EASE, RP3BETA, POPULARITY, MARKET, RECIPROCAL],
        help_text="The component the reason comes from; popularity on the popular fallback; market: what the "
                  "marketplace says of the item, after the components' reasons; reciprocal: why the other side "
                  "would likely answer, naming both sides (\"You need django; they list django and prefer "
                  "fintech, your industry\").")
    text = serializers.CharField(
        help_text="content_based: what the item shares with your profile or history; collaborative and item-item "
                  "models: \"People who applied to <item> also applied here\"; two_tower: \"Like <item>, which you "
                  "saved\" (<item>: the one of your interactions the component finds closest, named with what you "
                  "did); popularity: \"Popular with developers\" (the reader's role; the count covers all time, so no "
                  "period is named); market: \"Few applicants so far\" (a position with at most a couple of "
                  "applicants per opening).")


class RecommendationSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    item_type = serializers.ChoiceField(choices=ItemType.choices)
    item_id = serializers.IntegerField(help_text="The item's id; for a developer or investor, their user_id.")
    title = serializers.CharField()
    score = serializers.FloatField(help_text="The blended score the items are ranked by.")
    scores = ScoresSerializer()
    reasons = serializers.ListField(child=serializers.CharField(),
                                    help_text="The texts of explanations, in the same order.")
    explanations = ExplanationSerializer(
        many=True, help_text="Why the item is recommended, from each component that scored it: strongest "
                             "contribution (the component's weight times its score) first. Empty when explain "
                             "is false, and without a reason from a component that has nothing to name.")


class ExperimentAssignmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    variant = serializers.CharField(help_text="The user's variant (\"control\": the weights and versions in force).")


class RecommendationsSerializer(serializers.Serializer):
    recommendation_id = serializers.UUIDField(
        help_text="This answer's id: send it with an interaction on one of its items to attribute the event.")
    experiment = ExperimentAssignmentSerializer(allow_null=True,
                                                help_text="The experiment this answer took part in, or null.")
    user_id = serializers.IntegerField()
    user_type = serializers.ChoiceField(choices=Role.choices)
    algorithms_used = serializers.ListField(
        child=serializers.ChoiceField(choices=BLENDED),
        help_text="The components blended for this answer: algorithms, and popularity when it has a weight.")
    fallback = serializers.ChoiceField(choices=[PATH_ALL, *MISSING_PATHS.values(), PATH_COLD_START, PATH_POPULAR])
    weights = BlendWeightsSerializer(help_text="The weights this answer was blended with (0 for unused ones).")
    model_versions = ModelVersionsSerializer()
    results = RecommendationSerializer(many=True)


# ---------------------------------------------------------------- training


class TrainingInteractionSerializer(serializers.Serializer):
    user_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    item_type = serializers.ChoiceField(choices=ItemType.choices)
    item_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    kind = serializers.ChoiceField(choices=InteractionKind.choices)
    created_at = serializers.DateTimeField(required=False, help_text="Default: now.")


class TrainingDataSerializer(StrictSerializer):
    # many=True hands max_length to the ListSerializer it makes; the stub's __init__ does not list it
    interactions = TrainingInteractionSerializer(many=True, required=False,  # type: ignore[call-arg]
                                                 max_length=MAX_TRAINING_INTERACTIONS)

    def validate_interactions(self, events: list[dict]) -> list[dict]:
        """Every user must have a profile and every item must exist; errors are keyed by the event's index,
        as DRF keys the shape errors of a list."""
        roles = _roles_of({event["user_id"] for event in events})
        existing = _existing_items(events)
        errors = {str(n): error for n, event in enumerate(events) if (error := _event_error(event, roles, existing))}
        if errors:
            raise serializers.ValidationError(errors)
        return events


def _roles_of(user_ids: set[int]) -> dict[int, str]:
    roles: dict[int, str] = {}
    for role, model in ((Role.DEVELOPER, Developer), (Role.FOUNDER, Founder), (Role.INVESTOR, Investor)):
        roles.update(dict.fromkeys(model.objects.filter(pk__in=user_ids).values_list("pk", flat=True), role))
    return roles


def _existing_items(events: list[dict]) -> set[tuple[str, int]]:
    wanted: dict[str, set[int]] = defaultdict(set)
    for event in events:
        wanted[event["item_type"]].add(event["item_id"])
    models: dict[str, type[Model]] = {ItemType.POSITION: Position, ItemType.STARTUP: Startup,
                                      ItemType.DEVELOPER: Developer, ItemType.INVESTOR: Investor}
    return {(item_type, pk) for item_type, pks in wanted.items()
            for pk in models[item_type]._default_manager.filter(pk__in=pks).values_list("pk", flat=True)}


def _event_error(event: dict, roles: dict[int, str], existing: set[tuple[str, int]]) -> dict[str, list[str]]:
    role = roles.get(event["user_id"])
    if role is None:
        return {"user_id": [f"User {event['user_id']} does not exist or has no developer, founder or investor "
                            "profile."]}
    if (event["item_type"], event["item_id"]) not in existing:
        return {"item_id": [f"No {event['item_type']} has id {event['item_id']}."]}
    # The same rule as POST /interactions: people are recommended to founders only.
    if event["item_type"] in PERSON_ITEM_TYPES and role != Role.FOUNDER:
        return {"item_type": [f"Only founders interact with {a_or_an(event['item_type'])}; user {event['user_id']} "
                              f"is {a_or_an(role)}."]}
    return {}


class TrainRequestSerializer(StrictSerializer):
    training_data = TrainingDataSerializer(required=False)
    force_retrain = serializers.BooleanField(default=False)
    algorithms = serializers.ListField(child=algorithm_choice(), allow_empty=False, max_length=MAX_LIST_ITEMS,
                                       required=False, help_text="Default: all of them.")

    def validate_algorithms(self, algorithms: list[str]) -> list[str]:
        return list(dict.fromkeys(algorithms))


class TrainQueuedSerializer(serializers.Serializer):
    training_run_id = serializers.IntegerField()
    task_id = serializers.CharField(help_text="The Celery task's id; without a broker, the id of the thread's run.")
    status = serializers.ChoiceField(choices=TrainingRun.Status.values, help_text=(
        "The run's status when the answer was written: queued (or running, once a worker or, without a "
        "broker, a thread of the server has begun it). Follow it at status_url."))
    status_url = serializers.URLField()


class TrainUpToDateSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["up_to_date"])
    detail = serializers.CharField()
    model_versions = serializers.DictField(child=serializers.IntegerField(), help_text="The active versions.")


class ConflictSerializer(serializers.Serializer):
    detail = serializers.CharField()
    training_run_id = serializers.IntegerField(required=False)


# ---------------------------------------------------------------- measured as served (ml.evaluation)


class GroupMetricsSerializer(serializers.Serializer):
    """Metrics @10 of one group of held-out users, ranked as the API serves them; null when the group is empty."""

    ndcg = serializers.FloatField(allow_null=True)
    recall = serializers.FloatField(allow_null=True)
    mutual = serializers.FloatField(
        allow_null=True, required=False,
        help_text="Mutual matches@10 per user: top-10 items the user took in the held-out period whose other side "
                  "said yes to them (applied, contacted, showed interest or accepted); absent in runs measured "
                  "before it was.")
    coverage = serializers.FloatField(allow_null=True, help_text="Share of the items the group's roles may be "
                                                                 "served that appear in some top 10.")
    diversity = serializers.FloatField(allow_null=True, help_text="Intra-list diversity over the items' content; "
                                                                  "null without content vectors.")
    gini = serializers.FloatField(
        allow_null=True, required=False,
        help_text="Exposure concentration: the Gini of the top-10 slots per startup (a position counts for its "
                  "startup), over the startups the group may be served; 0 even, towards 1 concentrated. Null "
                  "where no startup is served (founders); absent in runs measured before it was.")
    users = serializers.IntegerField(help_text="Evaluated users in the group.")


def _group_metrics() -> GroupMetricsSerializer:
    return GroupMetricsSerializer()


class ServedMetricsSerializer(serializers.Serializer):
    """M: metrics @10 on a time-based holdout (each user's latest 20% of events), for all evaluated users,
    by role and by segment (training events before the holdout: cold none, light 1-4, heavy 5 or more)."""

    all = GroupMetricsSerializer()
    by_role = one_field_each("ServedMetricsByRoleSerializer", ROLES, _group_metrics)()
    by_segment = one_field_each("ServedMetricsBySegmentSerializer", SEGMENTS, _group_metrics)()


class HoldoutSerializer(serializers.Serializer):
    users = serializers.IntegerField(help_text="Users evaluated.")
    events = serializers.IntegerField(help_text="Events held out.")
    fraction = serializers.FloatField(help_text="Share of each user's latest events held out.")


class ServedEvaluationSerializer(serializers.Serializer):
    metrics = ServedMetricsSerializer(help_text="The run's set ranked as the API serves it, with the weights "
                                                "tuned on the holdout's earlier events.")
    one_sided = ServedMetricsSerializer(
        required=False, help_text="The same ranking without the other side's interest (reciprocal weight 0): what "
                                  "reciprocal ranking changes. Absent in runs measured before it was.")
    reciprocal_weight = serializers.FloatField(required=False,
                                               help_text="The RECIPROCAL_WEIGHT the served ranking blended with.")
    popularity = ServedMetricsSerializer(help_text="The most popular candidates, on the same users.")
    oracle = ServedMetricsSerializer(allow_null=True, help_text="On a seeded demo world, the ranking the world's "
                                                                "events follow (a ceiling); null elsewhere.")
    weights = serializers.DictField(child=serializers.FloatField(), help_text="The weights measured.")
    weights_by_role = serializers.DictField(
        child=serializers.DictField(child=serializers.FloatField()), required=False,
        help_text="Role -> the weights measured for that role's users instead.")
    holdout = HoldoutSerializer()
    seconds = serializers.FloatField()


class TunedSerializer(serializers.Serializer):
    """What a training's tuning chose on validation carved from each user's latest events."""

    weights = serializers.DictField(child=serializers.FloatField(),
                                    help_text="Algorithm -> weight, over the algorithms the run tuned.")
    by_role = serializers.DictField(child=serializers.DictField(child=serializers.FloatField()), required=False,
                                    help_text="Role -> its own weights, for roles with enough validation users.")
    validation_ndcg = serializers.FloatField(allow_null=True, help_text="NDCG@k of the blend on validation.")
    k = serializers.IntegerField(allow_null=True, required=False)
    settings = serializers.DictField(child=serializers.CharField(), help_text="Algorithm -> the setting chosen.")
    failed = serializers.DictField(child=serializers.CharField(),
                                   help_text="Algorithm -> why it could not be tuned.")


class PhaseAlgorithmProgressSerializer(serializers.Serializer):
    unit = serializers.ChoiceField(choices=["epoch", "iteration", "step"], allow_null=True,
                                   help_text="What the fit in progress counts.")
    done = serializers.IntegerField(allow_null=True)
    total = serializers.IntegerField(allow_null=True)
    setting = serializers.IntegerField(allow_null=True, help_text="While settings are compared: which one.")
    settings = serializers.IntegerField(allow_null=True, help_text="While settings are compared: how many.")
    fraction = serializers.FloatField(help_text="Share of its work in the phase done, 0-1; it never goes back.")
    finished = serializers.BooleanField()
    failed = serializers.BooleanField()
    seconds = serializers.FloatField(allow_null=True)
    train_loss = serializers.ListField(child=serializers.FloatField(allow_null=True), required=False)
    val_loss = serializers.ListField(child=serializers.FloatField(allow_null=True), required=False)
    lr = serializers.ListField(child=serializers.FloatField(allow_null=True), required=False,
                               help_text="The learning rate each epoch trained at.")
    best_epoch = serializers.IntegerField(allow_null=True, required=False,
                                          help_text="The epoch whose weights the fit keeps (so far).")
    peak_memory_mb = serializers.FloatField(allow_null=True, required=False,
                                            help_text="The final fit's: the process's peak resident memory.")


class PhaseProgressSerializer(serializers.Serializer):
    name = serializers.ChoiceField(choices=list(PHASES))
    label = serializers.CharField()  # type: ignore[assignment]  # a field named like Field.label, which the stubs type
    part = serializers.IntegerField(help_text="Which part of the run (the gpu queue's Two-Tower is the second).")
    started_at = serializers.DateTimeField()
    seconds = serializers.FloatField(allow_null=True, help_text="Null while the phase runs.")
    algorithms = serializers.DictField(child=PhaseAlgorithmProgressSerializer())


class ProgressSerializer(serializers.Serializer):
    """The run's phases in order, each algorithm's progress in each (only forward); the top-level epoch fields
    are the latest epoch-by-epoch fit's (the Two-Tower's, in phase ``loss_phase``)."""

    phase = serializers.CharField(allow_null=True, help_text="The phase in progress, or the last one.")
    phase_label = serializers.CharField(allow_null=True)
    phases = PhaseProgressSerializer(many=True)
    algorithm = algorithm_choice(allow_null=True)
    epoch = serializers.IntegerField(allow_null=True)
    epochs = serializers.IntegerField(allow_null=True)
    train_loss = serializers.ListField(child=serializers.FloatField(allow_null=True))
    val_loss = serializers.ListField(child=serializers.FloatField(allow_null=True))
    lr = serializers.ListField(child=serializers.FloatField(allow_null=True))
    best_epoch = serializers.IntegerField(allow_null=True)
    loss_phase = serializers.CharField(allow_null=True)


class TrainingRunSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    model_versions = serializers.SerializerMethodField()
    skipped = serializers.DictField(child=serializers.CharField(), help_text="Algorithm -> why it was not trained.")
    tuned = TunedSerializer(allow_null=True, help_text="Null until the run has tuned (or when it failed first).")
    served = ServedEvaluationSerializer(allow_null=True, help_text="The run's set measured as served; null until "
                                                                   "measured, or when nothing could be evaluated.")

    class Meta:
        model = TrainingRun
        fields = ["id", "status", "algorithms", "progress", "metrics", "model_versions", "skipped", "error",
                  "tuned", "served", "not_activated", "created_at", "started_at", "finished_at"]

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, run: TrainingRun) -> dict:
        """Always the same keys, also before the first epoch."""
        progress = run.progress or {}
        return {"phase": progress.get("phase"), "phase_label": progress.get("phase_label"),
                "phases": progress.get("phases", []),
                "algorithm": progress.get("algorithm"), "epoch": progress.get("epoch"),
                "epochs": progress.get("epochs"), "train_loss": progress.get("train_loss", []),
                "val_loss": progress.get("val_loss", []), "lr": progress.get("lr", []),
                "best_epoch": progress.get("best_epoch"), "loss_phase": progress.get("loss_phase")}

    @extend_schema_field(serializers.DictField(child=serializers.IntegerField()))
    def get_model_versions(self, run: TrainingRun) -> dict[str, int]:
        """The version each algorithm trained in this run was recorded as."""
        return {version.algorithm: version.version for version in run.model_versions.all()}


# ---------------------------------------------------------------- status, activation, weights


class AlgorithmStatusSerializer(serializers.Serializer):
    available = serializers.BooleanField(help_text="Whether it serves recommendations now.")
    active_version = serializers.IntegerField(allow_null=True)
    trained_at = serializers.DateTimeField(allow_null=True)
    metrics = serializers.DictField(help_text="Held-out metrics@10 of the active version.")
    device = serializers.CharField(allow_null=True)
    reason = serializers.CharField(allow_null=True, help_text="Why it does not serve; null when it does.")
    failed_version = serializers.IntegerField(
        allow_null=True, help_text="The version that was active until serving could not load it; an earlier one "
                                   "serves instead. Null when none.")
    failure_reason = serializers.CharField(allow_null=True, help_text="Why that version failed; null when none.")


class DataCountsSerializer(serializers.Serializer):
    users = serializers.IntegerField()
    items = serializers.IntegerField()
    interactions = serializers.IntegerField()


class ServedStatusSerializer(serializers.Serializer):
    training_run_id = serializers.IntegerField(help_text="The run whose served evaluation this is.")
    metrics = ServedMetricsSerializer(help_text="Its set ranked as the API serves it.")
    popularity = ServedMetricsSerializer(help_text="The most popular candidates, on the same held-out users.")


class AlgorithmsStatusSerializer(serializers.Serializer):
    algorithms = per_algorithm("AlgorithmStatusesSerializer", AlgorithmStatusSerializer)()
    weights = BlendWeightsSerializer(help_text="The weights in force (GET /api/v1/models/weights: their mode and "
                                               "the tuned weights of each role).")
    # a declared field (DRF's metaclass takes it off the class: Serializer.data stays), not the property
    data = DataCountsSerializer()  # type: ignore[assignment]
    latest_training_run = TrainingRunSerializer(allow_null=True)
    served = ServedStatusSerializer(allow_null=True, help_text="The served evaluation of the newest run whose "
                                                               "versions serve; null before any.")


class ModelLoadRequestSerializer(StrictSerializer):
    algorithm = algorithm_choice(required=False)
    version = serializers.IntegerField(min_value=1, max_value=2**31 - 1, required=False)

    def validate(self, attrs):
        if ("algorithm" in attrs) != ("version" in attrs):
            missing = "version" if "algorithm" in attrs else "algorithm"
            raise serializers.ValidationError({missing: "Give algorithm and version together, or neither "
                                                        "(to activate the newest ready version of each)."})
        return attrs


class ModelLoadSerializer(serializers.Serializer):
    activated = serializers.DictField(child=serializers.IntegerField(), help_text="Algorithm -> version activated.")
    model_versions = ModelVersionsSerializer(help_text="The active version of each algorithm now.")


@extend_schema_field({"type": "object", "additionalProperties": {"type": "number"},
                      "example": {"content_based": 0.4, "collaborative": 0.35, "two_tower": 0.25}})
class WeightsInputField(serializers.DictField):
    """Raw values: ml.services.normalised_weights decides what a valid weight is, for API and admin alike.
    Only their number is capped here, so that an answer listing unknown keys stays short."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping) and len(data) > MAX_LIST_ITEMS:
            raise serializers.ValidationError(f"At most {MAX_LIST_ITEMS} weights; got {len(data)}.")
        return super().to_internal_value(data)


class WeightsRequestSerializer(StrictSerializer):
    """Either manual weights or a return to tuned mode: one of the two fields, never both."""

    ACCEPTED = ('Send {"weights": {...}} to pin manual weights, or {"mode": "tuned"} to serve each training\'s '
                'tuned weights ({"mode": "manual"} pins the weights in force now); one of the two, not both.')

    weights = WeightsInputField(allow_empty=False, required=False,
                                help_text="Manual weights: pinned (mode manual) until the mode is set back to tuned.")
    mode = serializers.ChoiceField(choices=HybridWeights.Mode.choices, required=False,
                                   help_text="tuned: serve the weights each training tunes from now on; manual: pin "
                                             "the weights in force now.")

    def validate(self, attrs):
        if ("weights" in attrs) == ("mode" in attrs):
            raise serializers.ValidationError(self.ACCEPTED)
        return attrs


class WeightsEvaluateRequestSerializer(StrictSerializer):
    weights = WeightsInputField(allow_empty=False, help_text="The weights to measure; the same rules as PUT.")


class TunedWeightsSerializer(serializers.Serializer):
    weights = BlendWeightsSerializer(help_text="What tuned mode serves.")
    by_role = serializers.DictField(child=BlendWeightsSerializer(),
                                    help_text="Role -> the weights tuned mode serves that role's users instead (roles "
                                              "with enough validation users).")
    validation_ndcg = serializers.FloatField(allow_null=True, help_text="Their NDCG on the run's validation split.")
    training_run_id = serializers.IntegerField(help_text="The run that tuned them: the newest whose versions serve.")


class WeightsChangeSerializer(serializers.Serializer):
    weights = BlendWeightsSerializer(help_text="The weights in force after the change.")
    mode = serializers.ChoiceField(choices=HybridWeights.Mode.choices)
    changed_by = serializers.CharField(allow_null=True, help_text="Username; null when unknown or deleted.")
    changed_at = serializers.DateTimeField()


class WeightsStateSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=HybridWeights.Mode.choices,
                                   help_text="tuned: each training's tuned weights serve; manual: pinned weights.")
    weights = BlendWeightsSerializer(help_text="The weights in force now.")
    tuned = TunedWeightsSerializer(allow_null=True, help_text="Null before any training tuned weights.")
    history = WeightsChangeSerializer(many=True, help_text="Every change, newest first.")


class WeightsEvaluationSerializer(serializers.Serializer):
    proposed = ServedMetricsSerializer(help_text="The weights sent, measured as served.")
    current = ServedMetricsSerializer(help_text="The weights in force on the same held-out users (in tuned mode, "
                                                "the weights tuned for the held-out models).")


# ---------------------------------------------------------------- experiments and online metrics

EXPERIMENT_RATES = ("click_rate", "positive_rate", "conversion_rate", "dismissal_rate")


@extend_schema_field({"type": "object", "additionalProperties": {"type": "integer", "minimum": 1},
                      "example": {"two_tower": 3}})
class PinnedVersionsField(serializers.DictField):
    """Algorithm -> version; recommendations.experiments checks that each exists and can serve."""

    child = serializers.IntegerField(min_value=1, max_value=MAX_ID)

    def to_internal_value(self, data):
        if isinstance(data, Mapping) and len(data) > MAX_LIST_ITEMS:
            raise serializers.ValidationError(f"At most {MAX_LIST_ITEMS} versions; got {len(data)}.")
        return super().to_internal_value(data)


class VariantRequestSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100, help_text='Unique in the experiment; not "control".')
    share = serializers.FloatField(help_text="The part of the users it serves, in (0, 1]; the shares of all "
                                             "variants sum to at most 1 and the rest is the control.")
    weights = WeightsInputField(required=False, help_text="The blend's weights it serves (normalised to sum 1).")
    model_versions = PinnedVersionsField(required=False, help_text="Algorithm -> the version it serves: ready or "
                                                                   "active. A variant has weights and/or versions.")


class ExperimentRequestSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100)
    variants = VariantRequestSerializer(many=True, max_length=MAX_LIST_ITEMS)  # type: ignore[call-arg]  # as above
    metric = serializers.ChoiceField(choices=Experiment.Metric.choices, default=Experiment.Metric.CLICK_RATE,
                                     help_text="The rate the results decide the winner on.")
    starts_at = serializers.DateTimeField(required=False, allow_null=True,
                                          help_text="When serving starts splitting users; empty: when started.")
    ends_at = serializers.DateTimeField(required=False, allow_null=True,
                                        help_text="When it stops serving (excluded); empty: until stopped.")


class VariantSerializer(serializers.Serializer):
    name = serializers.CharField()
    share = serializers.FloatField()
    # A plain map, not BlendWeightsSerializer: a variant stored before an algorithm was added lacks its key.
    weights = serializers.DictField(child=serializers.FloatField(), required=False,
                                    help_text="Component -> weight, summing to 1. Absent: the weights in force.")
    model_versions = serializers.DictField(child=serializers.IntegerField(), required=False,
                                           help_text="Algorithm -> pinned version. Absent: the active versions.")


class ExperimentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=Experiment.Status.choices)
    variants = VariantSerializer(many=True, help_text="The rest of the users (1 - their shares) is the control.")
    metric = serializers.ChoiceField(choices=Experiment.Metric.choices)
    starts_at = serializers.DateTimeField(allow_null=True)
    ends_at = serializers.DateTimeField(allow_null=True)
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    stopped_at = serializers.DateTimeField(allow_null=True)
    promoted_variant = serializers.CharField(help_text="The variant made what is in force; empty: none.")


class PromoteRequestSerializer(StrictSerializer):
    variant = serializers.CharField(max_length=100, help_text="The variant whose weights and versions to put "
                                                              "in force.")


RatesSerializer = one_field_each("RatesSerializer", EXPERIMENT_RATES,
                                 lambda: serializers.FloatField(allow_null=True),
                                 "Each rate per item shown; null without items shown.")


def _interval(**kwargs) -> serializers.ListField:
    return serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2, **kwargs)


RateIntervalsSerializer = one_field_each("RateIntervalsSerializer", EXPERIMENT_RATES,
                                         lambda: _interval(allow_null=True),
                                         "Each rate's 95% interval [low, high]; null when it cannot be measured.")


class DifferenceSerializer(serializers.Serializer):
    difference = serializers.FloatField(help_text="The variant's rate minus the control's.")
    interval = _interval(help_text="Its 95% interval.")
    p_value = serializers.FloatField(help_text="Two-sided z-test of no difference.")


DifferencesSerializer = one_field_each("DifferencesSerializer", EXPERIMENT_RATES,
                                       lambda: DifferenceSerializer(allow_null=True),
                                       "Per rate; null when either group has fewer than two users.")


class GroupResultSerializer(serializers.Serializer):
    name = serializers.CharField()
    users = serializers.IntegerField()
    impressions = serializers.IntegerField()
    items_shown = serializers.IntegerField()
    rates = RatesSerializer()
    intervals = RateIntervalsSerializer(help_text="By the delta method over users (the unit of randomisation).")


class VariantResultSerializer(GroupResultSerializer):
    difference_vs_control = DifferencesSerializer()
    p_value = serializers.FloatField(allow_null=True, help_text="The primary metric's.")
    users_needed = serializers.IntegerField(
        allow_null=True, help_text="Users per group still needed to detect the primary difference seen at alpha "
                                   "0.05 with 80% power; 0 once reached; null when no difference is seen.")


class ExperimentSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    # Not an enum here: a second component with the same choices would leave drf-spectacular no good name.
    status = serializers.CharField(help_text="As the experiment's: draft, running or stopped.")
    metric = serializers.ChoiceField(choices=Experiment.Metric.choices)


class ExperimentResultsSerializer(serializers.Serializer):
    experiment = ExperimentSummarySerializer()
    control = GroupResultSerializer()
    variants = VariantResultSerializer(many=True)
    winner = serializers.CharField(allow_null=True, help_text='The variant (or "control") that is best on the '
                                                              "primary metric at p < alpha; null when none is.")
    alpha = serializers.FloatField()


@extend_schema_field({"type": "string", "example": "2026-11-30"})
class DayOrTimeField(serializers.Field):
    """An ISO date or datetime. A date is a whole UTC day: since from its start, until to its end."""

    def __init__(self, *, end_of_day: bool, **kwargs):
        self.end_of_day = end_of_day
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        text = str(data).strip()
        try:
            day = parse_date(text) if len(text) == 10 else None
            moment = None if day else parse_datetime(text)
        except ValueError:  # the right shape, an impossible value (2026-02-30)
            day = moment = None
        if day is not None:
            try:
                moment = datetime.combine(day, time.min, tzinfo=UTC) + timedelta(days=1 if self.end_of_day else 0)
            except OverflowError:
                raise serializers.ValidationError(f"{text} is past the last day there is.") from None
        if moment is None:
            raise serializers.ValidationError(f"{text!r} is not an ISO date (2026-11-30) or datetime "
                                              "(2026-11-30T12:00:00Z).")
        try:
            return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        except OverflowError:  # an offset that moves it past the first or last day there is
            raise serializers.ValidationError(f"{text} is out of range.") from None

    def to_representation(self, value):
        return value.isoformat()


ONLINE_DIMENSIONS = ("day", "variant", "role", "rank")
MAX_ONLINE_DAYS = 366
DEFAULT_ONLINE_DAYS = 30


class OnlineMetricsQuerySerializer(StrictSerializer):
    since = DayOrTimeField(end_of_day=False, required=False, help_text=f"Default: {DEFAULT_ONLINE_DAYS} days "
                                                                       "before until.")
    until = DayOrTimeField(end_of_day=True, required=False, help_text="Excluded; a date includes its day. "
                                                                      "Default: now.")
    group_by = serializers.CharField(default="day", max_length=100, help_text=(
        f"One of {', '.join(ONLINE_DIMENSIONS)}, or several comma-separated (day,variant)."))

    def validate_group_by(self, value: str) -> list[str]:
        names = [name.strip() for name in value.split(",")]
        unknown = [name for name in names if name not in ONLINE_DIMENSIONS]
        if unknown:
            raise serializers.ValidationError(f"Unknown dimension(s) {', '.join(map(repr, unknown))}; "
                                              f"expected some of {', '.join(ONLINE_DIMENSIONS)}, comma-separated.")
        if len(set(names)) < len(names):
            raise serializers.ValidationError("A dimension is named twice.")
        return names

    def validate(self, attrs):
        until = attrs.get("until") or timezone.now()
        try:
            since = attrs.get("since") or until - timedelta(days=DEFAULT_ONLINE_DAYS)
        except OverflowError:
            raise serializers.ValidationError({"until": "Too early to count 30 days back from; send since."}) from None
        if since > until:
            raise serializers.ValidationError({"until": f"until ({until.isoformat()}) is before since "
                                                        f"({since.isoformat()})."})
        if until - since > timedelta(days=MAX_ONLINE_DAYS):
            raise serializers.ValidationError({"since": f"since and until are {(until - since).days} days apart; "
                                                        f"at most {MAX_ONLINE_DAYS}."})
        return {**attrs, "since": since, "until": until}


class OnlineKeysSerializer(serializers.Serializer):
    day = serializers.CharField(required=False, help_text="UTC date of the impressions.")
    variant = serializers.CharField(required=False, help_text='"<experiment>/<variant>", or "none".')
    role = serializers.ChoiceField(choices=Role.choices, required=False)
    rank = serializers.IntegerField(required=False, help_text="1-based position in the answer.")


class OnlineGroupSerializer(serializers.Serializer):
    key = serializers.CharField(help_text='The dimensions\' values joined with " / ".')
    keys = OnlineKeysSerializer()
    impressions = serializers.IntegerField()
    items_shown = serializers.IntegerField()
    clicks = serializers.IntegerField(help_text="(impression, item) pairs clicked; a positive or conversion is a "
                                                "click too.")
    positives = serializers.IntegerField()
    conversions = serializers.IntegerField()
    dismissals = serializers.IntegerField()
    click_rate = serializers.FloatField(help_text="Per item shown, as every rate.")
    positive_rate = serializers.FloatField()
    conversion_rate = serializers.FloatField()
    dismissal_rate = serializers.FloatField()
    intervals = one_field_each("OnlineIntervalsSerializer", EXPERIMENT_RATES, _interval,
                               "Each rate's 95% Wilson interval [low, high].")()


class OnlineMetricsSerializer(serializers.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    group_by = serializers.ListField(child=serializers.ChoiceField(choices=ONLINE_DIMENSIONS))
    groups = OnlineGroupSerializer(many=True)


# ---------------------------------------------------------------- similar items (recommendations.similar)


class SimilarQuerySerializer(StrictSerializer):
    limit = serializers.IntegerField(min_value=1, max_value=100, default=10)


class SimilarItemSerializer(serializers.Serializer):
    item_type = serializers.ChoiceField(choices=ItemType.choices, help_text="The asked item's type.")
    item_id = serializers.IntegerField(help_text="The item's id; for a developer or investor, their user_id.")
    title = serializers.CharField()
    score = serializers.FloatField(help_text="The blend of each model's similarity to the item (z-scored over the "
                                             "type's items, weighted as the hybrid in force); higher is closer.")
    reasons = serializers.ListField(child=serializers.CharField(), help_text=(
        "What the two share, strongest first: \"Shares django, python; industry: fintech\" (content), \"People "
        "who viewed <item> also viewed this one\" (the models that learn from interactions). May be empty."))


class SimilarItemsSerializer(serializers.Serializer):
    results = SimilarItemSerializer(many=True, help_text="Most similar first; never the item itself, only items "
                                                         "that may be shown (open positions).")
