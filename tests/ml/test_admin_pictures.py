"""Admin's model versions and training runs: metric columns in the list, and on each page the loss curves and
metrics as pictures, the JSON as stored folded away, counts as integers, algorithm names as people read them."""
import copy
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages

from ml.models import ModelVersion, TrainingRun
from ml.progress import RunProgress

pytestmark = pytest.mark.django_db

METRICS = {"ndcg": 0.12623, "recall": 0.19331, "mutual": 0.04962, "coverage": 0.29305, "diversity": 0.76779,
           "gini": 0.75, "users": 262.0}
SERVED_GROUP = {"ndcg": 0.1369, "recall": 0.2, "coverage": 0.4, "diversity": 0.7, "users": 262}


@pytest.fixture
def admin_client(client):
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-boss-123"))
    return client


def recorded_progress() -> dict:
    """A run's progress as training records it: a Two-Tower fit in two phases, the final one with memory."""
    saved = {}
    report = RunProgress({}, lambda p: saved.update(copy.deepcopy(p)))
    report.plan(["validation", "final_fit"])
    for phase in ("validation", "final_fit"):
        report.begin(phase, ["two_tower"])
        report("fit", {"algorithm": "two_tower", "unit": "epoch", "total": 3})
        for epoch, loss in enumerate([3.0, 2.5, 2.6], start=1):
            report("epoch", {"algorithm": "two_tower", "epoch": epoch, "epochs": 3, "train_loss": loss + .5,
                             "val_loss": loss, "lr": 1e-3, "best_epoch": min(epoch, 2)})
    report.fitted("two_tower", seconds=1.25, peak_memory_mb=580.0)
    report.end()
    return saved


@pytest.fixture
def run() -> TrainingRun:
    run = TrainingRun.objects.create(
        algorithms=["two_tower", "content_based"], status="succeeded", in_flight=None, progress=recorded_progress(),
        served={"metrics": {"all": SERVED_GROUP, "by_role": {"developer": SERVED_GROUP}, "by_segment": {}},
                "popularity": {"all": {**SERVED_GROUP, "ndcg": 0.098}, "by_role": {}, "by_segment": {}},
                "oracle": None},
        metrics={"two_tower": METRICS})
    for version, ndcg in ((1, 0.1), (2, 0.12623)):
        ModelVersion.objects.create(algorithm="two_tower", version=version, status="ready", training_run=run,
                                    metrics={**METRICS, "ndcg": ndcg}, training_seconds=1.25, peak_memory_mb=580.0)
    ModelVersion.objects.create(algorithm="content_based", version=1, status="failed", training_run=run,
                                metrics={"error": "no item content"})
    return run


def pictures(page: str) -> list[str]:
    return re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]{1000,})" alt="([^"]+)"', page)


def test_the_versions_list_has_a_column_per_metric_with_counts_as_integers(admin_client, run):
    page = admin_client.get("/admin/ml/modelversion/").content.decode()
    for heading in ("NDCG@10", "Recall@10", "Mutual@10", "Coverage", "Diversity", "Held-out users"):
        assert f">{heading}</a>" in page, heading  # a sortable column each
    assert "0.1262" in page and "0.1933" in page and ">262<" in page and "262.0" not in page
    assert "Two-Tower" in page and "Content-based" in page
    assert admin_client.get("/admin/ml/modelversion/?o=4").status_code == 200  # sorted by NDCG


def test_a_versions_page_pictures_its_metrics_beside_its_algorithms_others_and_its_loss_curves(admin_client, run):
    version = ModelVersion.objects.get(algorithm="two_tower", version=2)
    page = admin_client.get(f"/admin/ml/modelversion/{version.pk}/change/").content.decode()
    alts = [alt for _, alt in pictures(page)]
    assert alts == ["Held-out metrics of Two-Tower v2 beside the other versions of Two-Tower",
                    "Two-Tower v2: its fit&#x27;s loss per epoch"], alts
    assert "<th>users</th><td style='text-align:right'>262</td>" in page  # a count, not 262.0
    assert "<details><summary>raw JSON" in page  # the JSON as stored, folded away
    assert "<h1>Change model version</h1>" in page or "Two-Tower v2 (ready)" in page


def test_a_runs_page_pictures_its_progress_losses_metrics_and_served_evaluation(admin_client, run):
    page = admin_client.get(f"/admin/ml/trainingrun/{run.pk}/change/").content.decode()
    alts = [alt for _, alt in pictures(page)]
    assert alts == [f"Loss per epoch of each fit of training run {run.pk}",
                    f"Held-out metrics of the versions of training run {run.pk}",
                    f"NDCG@10 as served of training run {run.pk}"], alts
    assert "Choosing settings on validation" in page and "Final fit on all the data" in page
    assert "3 epochs · best 2 · 1.25 s · 580 MB" in page  # each algorithm's time and memory in the run
    assert "Two-Tower v2" in page and "1.25 s" in page
    assert page.count("<details><summary>raw JSON") == 3  # progress, metrics, served (tuned is empty)
    assert "Two-Tower, Content-based" in page


def test_activating_in_admin_names_the_version_as_people_read_it(admin_client, collaborative_artifact):
    ModelVersion.objects.create(algorithm="collaborative", version=1, status="active")
    newer = ModelVersion.objects.create(algorithm="collaborative", version=2, status="ready",
                                        artifact_path=collaborative_artifact)
    response = admin_client.post("/admin/ml/modelversion/", {"action": "activate", "_selected_action": [newer.pk]})
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Collaborative filtering v2 is now serving."]
