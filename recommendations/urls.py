from django.urls import path

from . import apis

urlpatterns = [
    path("recommendations", apis.RecommendationsApi.as_view(), name="recommendations"),
    path("models/train", apis.TrainApi.as_view(), name="models-train"),
    path("models/training-runs", apis.TrainingRunListApi.as_view(), name="training-run-list"),
    path("models/training-runs/<int:run_id>", apis.TrainingRunDetailApi.as_view(), name="training-run-detail"),
    path("models/load", apis.ModelLoadApi.as_view(), name="models-load"),
    path("models/weights", apis.WeightsApi.as_view(), name="models-weights"),
    path("models/weights/evaluate", apis.WeightsEvaluateApi.as_view(), name="models-weights-evaluate"),
    path("algorithms/status", apis.AlgorithmsStatusApi.as_view(), name="algorithms-status"),
]

urlpatterns += [
    path("experiments", apis.ExperimentListApi.as_view(), name="experiment-list"),
    path("experiments/<int:experiment_id>", apis.ExperimentDetailApi.as_view(), name="experiment-detail"),
    path("experiments/<int:experiment_id>/start", apis.ExperimentStartApi.as_view(), name="experiment-start"),
    path("experiments/<int:experiment_id>/stop", apis.ExperimentStopApi.as_view(), name="experiment-stop"),
    path("experiments/<int:experiment_id>/promote", apis.ExperimentPromoteApi.as_view(), name="experiment-promote"),
    path("experiments/<int:experiment_id>/results", apis.ExperimentResultsApi.as_view(), name="experiment-results"),
    path("metrics/online", apis.OnlineMetricsApi.as_view(), name="metrics-online"),
]

urlpatterns += [
    path("positions/<int:item_id>/similar", apis.SimilarPositionsApi.as_view(), name="position-similar"),
    path("startups/<int:item_id>/similar", apis.SimilarStartupsApi.as_view(), name="startup-similar"),
    path("developers/<int:user_id>/similar", apis.SimilarDevelopersApi.as_view(), name="developer-similar"),
    path("investors/<int:user_id>/similar", apis.SimilarInvestorsApi.as_view(), name="investor-similar"),
]
