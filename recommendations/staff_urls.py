"""The staff pages, mounted at /staff/ (see recommendations/staff.py)."""
from django.urls import path

from . import staff

app_name = "staff"

urlpatterns = [
    path("", staff.user_search, name="user-search"),
    path("users/<int:user_id>/", staff.user_detail, name="user-detail"),
    path("users/<int:user_id>/weights/", staff.weights_trial, name="user-weights"),
    path("training-runs/", staff.training_runs, name="training-runs"),
    path("training-runs/retrain/", staff.retrain, name="retrain"),
    path("training-runs/<int:run_id>/loss.png", staff.run_loss_plot, name="run-loss-plot"),
    path("training-runs/<int:run_id>/progress.json", staff.run_progress, name="run-progress"),
    path("training-runs/metrics.png", staff.metrics_plot, name="metrics-plot"),
    path("training-runs/<int:run_id>/served.png", staff.served_plot, name="served-plot"),
    path("weights/apply-tuned/", staff.apply_tuned_weights, name="apply-tuned-weights"),
    path("online/", staff.online_page, name="online"),
    path("online/rates.png", staff.online_plot, name="online-plot"),
    path("experiments/", staff.experiment_list, name="experiments"),
    path("experiments/<int:experiment_id>/", staff.experiment_detail, name="experiment-detail"),
    path("experiments/<int:experiment_id>/results.png", staff.experiment_plot, name="experiment-plot"),
]
