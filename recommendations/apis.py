"""The model and recommendation endpoints of /api/v1 (docs/api.md, "The five endpoints").

Thin views: a serializer validates, one service or selector does the work, a serializer answers.
"""
from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import ListAPIView
from rest_framework.permissions import BasePermission, IsAdminUser, IsAuthenticated
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from ml import evaluation
from ml.models import Algorithm
from ml.selectors import weights_state
from ml.services import hybrid_weights_mode_set, hybrid_weights_set
from profiles.apis import Pagination
from profiles.models import ItemType, Role
from profiles.selectors import role_of
from profiles.serializers import MAX_ID
from recsys_site.exceptions import NotFound
from recsys_site.throttling import UserScopedThrottle

from . import experiments, online, selectors, services, similar
from .serializers import (
    AlgorithmsStatusSerializer,
    ConflictSerializer,
    ExperimentRequestSerializer,
    ExperimentResultsSerializer,
    ExperimentSerializer,
    ModelLoadRequestSerializer,
    ModelLoadSerializer,
    OnlineMetricsQuerySerializer,
    OnlineMetricsSerializer,
    PromoteRequestSerializer,
    RecommendationRequestSerializer,
    RecommendationsSerializer,
    SimilarItemsSerializer,
    SimilarQuerySerializer,
    TrainingRunSerializer,
    TrainQueuedSerializer,
    TrainRequestSerializer,
    TrainUpToDateSerializer,
    WeightsEvaluateRequestSerializer,
    WeightsEvaluationSerializer,
    WeightsRequestSerializer,
    WeightsStateSerializer,
)

MODELS_TAG = ["models"]


class IsStaff(IsAdminUser):
    message = "Model management is for staff only."


class RecommendationsApi(APIView):
    # A query, not a write: its own per-user rate instead of "write".
    throttle_classes = [UserScopedThrottle]
    throttle_scope = "recommendations"

    @extend_schema(request=RecommendationRequestSerializer, responses={200: RecommendationsSerializer},
                   tags=["recommendations"])
    def post(self, request):
        query = RecommendationRequestSerializer(data=request.data)
        query.is_valid(raise_exception=True)
        wanted = query.validated_data
        if wanted["user_id"] != request.user.pk and not request.user.is_staff:
            raise PermissionDenied("You may ask recommendations only for yourself (your user_id is "
                                   f"{request.user.pk}); other users are for staff.")
        answer = services.recommendations_for_user(**wanted)
        # The answer already has the documented shape (RecommendationsSerializer); building it field by
        # field through the serializer would cost more than a millisecond of the hot path, and asdict's
        # deep copy a third of one.
        if settings.RECORD_IMPRESSIONS:
            services.impression_record(services.impression_of(answer))  # buffered: no round trip here
        return Response({**vars(answer), "results": [vars(item) for item in answer.results]})


class TrainApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(request=TrainRequestSerializer, tags=MODELS_TAG, responses={
        202: TrainQueuedSerializer, 200: TrainUpToDateSerializer,
        409: OpenApiResponse(ConflictSerializer, description="A run is already queued or running."),
        503: OpenApiResponse(ConflictSerializer, description="The task broker is unreachable.")})
    def post(self, request):
        body = TrainRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        wanted = body.validated_data
        queued = services.training_request(
            algorithms=wanted.get("algorithms", list(Algorithm.values)), force_retrain=wanted["force_retrain"],
            interactions=wanted.get("training_data", {}).get("interactions", []), requested_by=request.user)
        if queued.run is None:
            return Response({"status": "up_to_date", "model_versions": queued.active_versions,
                             "detail": "Nothing changed since these algorithms were last trained; nothing was "
                                       "queued. Send force_retrain: true to train anyway."})
        # Answered at once, the broker or (without one) a thread of this process training the run: its status
        # is as it stands now ("queued", or "running" when its thread has begun), status_url follows it.
        url = reverse("training-run-detail", args=[queued.run.pk], request=request)
        return Response({"training_run_id": queued.run.pk, "task_id": queued.run.celery_task_id,
                         "status": queued.run.status, "status_url": url}, status=status.HTTP_202_ACCEPTED)


class TrainingRunListApi(ListAPIView):
    permission_classes = [IsStaff]
    serializer_class = TrainingRunSerializer
    pagination_class = Pagination
    filter_backends: list = []

    @extend_schema(tags=MODELS_TAG)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return selectors.training_run_list()


class TrainingRunDetailApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(responses={200: TrainingRunSerializer}, tags=MODELS_TAG)
    def get(self, request, run_id: int):
        if run_id > MAX_ID:
            raise NotFound(f"No training run has id {run_id}.")
        return Response(TrainingRunSerializer(selectors.training_run_get(run_id=run_id)).data)


class AlgorithmsStatusApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(responses={200: AlgorithmsStatusSerializer}, tags=MODELS_TAG)
    def get(self, request):
        return Response(AlgorithmsStatusSerializer(selectors.algorithms_status()).data)


class ModelLoadApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(request=ModelLoadRequestSerializer, tags=MODELS_TAG, responses={
        200: ModelLoadSerializer,
        409: OpenApiResponse(ConflictSerializer, description="The artifact is missing or corrupt, or the version "
                                                             "cannot be activated; nothing changed.")})
    def post(self, request):
        body = ModelLoadRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        activated = services.model_versions_load(**body.validated_data)
        active = services.active_versions()
        return Response(ModelLoadSerializer({
            "activated": activated, "model_versions": {a: active.get(a) for a in Algorithm.values}}).data)


class WeightsApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(responses={200: WeightsStateSerializer}, tags=MODELS_TAG)
    def get(self, request):
        return Response(WeightsStateSerializer(weights_state()).data)

    @extend_schema(request=WeightsRequestSerializer, responses={200: WeightsStateSerializer}, tags=MODELS_TAG)
    def put(self, request):
        body = WeightsRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if "weights" in body.validated_data:
            hybrid_weights_set(weights=body.validated_data["weights"], changed_by=request.user)
        else:
            hybrid_weights_mode_set(mode=body.validated_data["mode"], changed_by=request.user)
        return Response(WeightsStateSerializer(weights_state()).data)


class WeightsEvaluateApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(request=WeightsEvaluateRequestSerializer, tags=MODELS_TAG, responses={
        200: WeightsEvaluationSerializer,
        409: OpenApiResponse(ConflictSerializer, description="No training has measured a held-out split yet "
                                                             "(or its files cannot be read): train first.")})
    def post(self, request):
        body = WeightsEvaluateRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        measured = evaluation.evaluate_weights(body.validated_data["weights"])
        return Response(WeightsEvaluationSerializer(measured).data)


# ---------------------------------------------------------------- experiments and online metrics

EXPERIMENTS_TAG = ["experiments"]


class IsStaffForExperiments(IsAdminUser):
    message = "Experiments and online metrics are for staff only."


class ExperimentListApi(ListAPIView):
    permission_classes = [IsStaffForExperiments]
    serializer_class = ExperimentSerializer
    pagination_class = Pagination
    filter_backends: list = []

    @extend_schema(tags=EXPERIMENTS_TAG)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(request=ExperimentRequestSerializer, responses={201: ExperimentSerializer}, tags=EXPERIMENTS_TAG)
    def post(self, request):
        body = ExperimentRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        created = experiments.experiment_create(**body.validated_data, created_by=request.user)
        return Response(ExperimentSerializer(created).data, status=status.HTTP_201_CREATED)

    def get_queryset(self):
        return experiments.experiment_list()


DRAFT_ONLY = OpenApiResponse(ConflictSerializer, description="The experiment is not a draft.")


class ExperimentDetailApi(APIView):
    permission_classes = [IsStaffForExperiments]

    @extend_schema(responses={200: ExperimentSerializer}, tags=EXPERIMENTS_TAG)
    def get(self, request, experiment_id: int):
        return Response(ExperimentSerializer(experiments.experiment_get(experiment_id=experiment_id)).data)

    @extend_schema(request=ExperimentRequestSerializer, responses={200: ExperimentSerializer, 409: DRAFT_ONLY},
                   tags=EXPERIMENTS_TAG)
    def put(self, request, experiment_id: int):
        return self._update(request, experiment_id, partial=False)

    @extend_schema(request=ExperimentRequestSerializer(partial=True),
                   responses={200: ExperimentSerializer, 409: DRAFT_ONLY}, tags=EXPERIMENTS_TAG)
    def patch(self, request, experiment_id: int):
        return self._update(request, experiment_id, partial=True)

    @extend_schema(responses={204: None, 409: DRAFT_ONLY}, tags=EXPERIMENTS_TAG)
    def delete(self, request, experiment_id: int):
        experiments.experiment_delete(experiment=experiments.experiment_get(experiment_id=experiment_id))
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _update(self, request, experiment_id: int, *, partial: bool) -> Response:
        experiment = experiments.experiment_get(experiment_id=experiment_id)
        body = ExperimentRequestSerializer(data=request.data, partial=partial)
        body.is_valid(raise_exception=True)
        updated = experiments.experiment_update(experiment=experiment, data=body.validated_data)
        return Response(ExperimentSerializer(updated).data)


class ExperimentStartApi(APIView):
    permission_classes = [IsStaffForExperiments]

    @extend_schema(request=None, tags=EXPERIMENTS_TAG, responses={
        200: ExperimentSerializer,
        400: OpenApiResponse(ConflictSerializer, description="Another experiment is running, or ends_at has passed."),
        409: OpenApiResponse(ConflictSerializer, description="The experiment is not a draft.")})
    def post(self, request, experiment_id: int):
        started = experiments.experiment_start(experiment=experiments.experiment_get(experiment_id=experiment_id))
        return Response(ExperimentSerializer(started).data)


class ExperimentStopApi(APIView):
    permission_classes = [IsStaffForExperiments]

    @extend_schema(request=None, tags=EXPERIMENTS_TAG, responses={
        200: ExperimentSerializer, 409: OpenApiResponse(ConflictSerializer, description="It is not running.")})
    def post(self, request, experiment_id: int):
        stopped = experiments.experiment_stop(experiment=experiments.experiment_get(experiment_id=experiment_id))
        return Response(ExperimentSerializer(stopped).data)


class ExperimentPromoteApi(APIView):
    permission_classes = [IsStaffForExperiments]

    @extend_schema(request=PromoteRequestSerializer, tags=EXPERIMENTS_TAG, responses={
        200: ExperimentSerializer,
        409: OpenApiResponse(ConflictSerializer, description="A draft, or already promoted, or a pinned version "
                                                             "cannot be activated; nothing changed.")})
    def post(self, request, experiment_id: int):
        experiment = experiments.experiment_get(experiment_id=experiment_id)
        body = PromoteRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        promoted = experiments.experiment_promote(experiment=experiment, variant=body.validated_data["variant"],
                                                  promoted_by=request.user)
        return Response(ExperimentSerializer(promoted).data)


class ExperimentResultsApi(APIView):
    permission_classes = [IsStaffForExperiments]

    @extend_schema(responses={200: ExperimentResultsSerializer}, tags=EXPERIMENTS_TAG)
    def get(self, request, experiment_id: int):
        experiment = experiments.experiment_get(experiment_id=experiment_id)
        return Response(ExperimentResultsSerializer(experiments.experiment_results(experiment=experiment)).data)


class OnlineMetricsApi(APIView):
    permission_classes = [IsStaffForExperiments]

    @extend_schema(parameters=[OnlineMetricsQuerySerializer], responses={200: OnlineMetricsSerializer},
                   tags=["metrics"])
    def get(self, request):
        query = OnlineMetricsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        wanted = query.validated_data
        groups = online.online_metrics(since=wanted["since"], until=wanted["until"], group_by=wanted["group_by"])
        return Response(OnlineMetricsSerializer({**wanted, "groups": groups}).data)


# ---------------------------------------------------------------- similar items and people like you

SIMILAR_TAG = ["similar"]
SIMILAR_NOT_FOUND = OpenApiResponse(ConflictSerializer, description=(
    "No such item, a position that is not open, or an item the serving models do not know (newer than their "
    "training, or no model trained): the detail says which."))


class IsFounderOrStaff(BasePermission):
    message = "Similar developers and investors are for founders and staff only."

    def has_permission(self, request, view) -> bool:
        return request.user.is_staff or role_of(request.user) == Role.FOUNDER


class _SimilarApi(APIView):
    item_type: str
    # A query, as recommendations are: their per-user rate.
    throttle_classes = [UserScopedThrottle]
    throttle_scope = "recommendations"

    def similar(self, request, item_id: int) -> Response:
        query = SimilarQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        if item_id > MAX_ID:  # beyond any primary key: the database would refuse the number itself
            raise NotFound(similar.missing_detail(self.item_type, item_id))
        results = similar.similar_items(item_type=self.item_type, item_id=item_id, viewer_role=role_of(request.user),
                                        **query.validated_data)
        return Response(SimilarItemsSerializer({"results": results}).data)


class _SimilarPeopleApi(_SimilarApi):
    permission_classes = [IsAuthenticated, IsFounderOrStaff]


def _similar_schema(noun: str, people: bool = False):
    forbidden = {403: OpenApiResponse(ConflictSerializer, description="The asker is not a founder or staff.")}
    return extend_schema(
        parameters=[SimilarQuerySerializer], tags=SIMILAR_TAG,
        description=f"The {noun} most like this one, by the serving models, with reasons.",
        responses={200: SimilarItemsSerializer, 404: SIMILAR_NOT_FOUND, **(forbidden if people else {})})


class SimilarPositionsApi(_SimilarApi):
    item_type = ItemType.POSITION

    @_similar_schema("open positions")
    def get(self, request, item_id: int):
        return self.similar(request, item_id)


class SimilarStartupsApi(_SimilarApi):
    item_type = ItemType.STARTUP

    @_similar_schema("startups")
    def get(self, request, item_id: int):
        return self.similar(request, item_id)


class SimilarDevelopersApi(_SimilarPeopleApi):
    item_type = ItemType.DEVELOPER

    @_similar_schema("developers (by user id)", people=True)
    def get(self, request, user_id: int):
        return self.similar(request, user_id)


class SimilarInvestorsApi(_SimilarPeopleApi):
    item_type = ItemType.INVESTOR

    @_similar_schema("investors (by user id)", people=True)
    def get(self, request, user_id: int):
        return self.similar(request, user_id)
