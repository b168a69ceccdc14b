"""What-if before saving (issue 12, point 5): POST /models/weights/evaluate measures proposed weights on the
latest run's held-out split, and `manage.py evaluate --held-out latest --weights ...` prints the same numbers."""
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

URL = "/api/v1/models/weights/evaluate"
PROPOSED = {"content_based": 0.7, "collaborative": 0.3}


@pytest.fixture
def staff_client(staff_user, client_for):
    return client_for(staff_user)


def evaluate_command(tmp_path, *options) -> dict:
    out = tmp_path / "evaluation.json"
    call_command("evaluate", *options, "--plot", str(tmp_path / "e.png"), "--json", str(out), stdout=StringIO())
    return json.loads(out.read_text())


def test_the_what_if_equals_evaluate_on_the_latest_held_out_split_with_the_same_weights(measured_run, staff_client,
                                                                                         tmp_path):
    response = staff_client.post(URL, {"weights": PROPOSED}, format="json")
    assert response.status_code == 200, response.content

    printed = evaluate_command(tmp_path, "--held-out", "latest", "--weights", json.dumps(PROPOSED))

    assert printed["training_run"] == measured_run.pk
    assert printed["weights"]["content_based"] == 0.7 and printed["weights"]["two_tower"] == 0.0
    assert response.json()["proposed"] == printed["metrics"]
    assert printed["metrics"]["all"]["users"] > 0 and printed["metrics"]["all"]["ndcg"] is not None


def test_evaluate_with_other_weights_measures_other_numbers(measured_run, tmp_path):
    content = evaluate_command(tmp_path, "--held-out", "latest", "--weights", '{"content_based": 1}')
    collaborative = evaluate_command(tmp_path, "--held-out", "latest", "--weights", '{"collaborative": 1}')

    assert content["metrics"]["all"] != collaborative["metrics"]["all"]


@pytest.mark.parametrize(("weights", "message"), [
    ("not json", "not JSON"), ("[1, 2]", "a JSON object"), ('{"bogus": 1}', "Unknown algorithm"),
    ('{"content_based": -1}', ">= 0")])
def test_evaluate_refuses_bad_weights_saying_why(measured_run, tmp_path, weights, message):
    with pytest.raises(CommandError, match=message):
        call_command("evaluate", "--held-out", "latest", "--weights", weights, stdout=StringIO())
