"""A run's progress as ml.progress records it: phases in order, each algorithm's share only moving forward,
the Two-Tower's losses, learning rate and best epoch per fit, and how the pages read it back."""
import copy

import pytest

from ml import progress
from ml.progress import RunProgress, loss_fits, progress_table


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.25
        return self.now


@pytest.fixture
def recorded():
    """A recorder whose every write is kept (a deep copy: what the run would hold after it)."""
    writes, said = [], []
    recorder = RunProgress({}, lambda p: writes.append(copy.deepcopy(p)),
                           echo=lambda algorithm, event, info: said.append((algorithm, event)), clock=Clock())
    return recorder, writes, said


def two_tower_fit(report, epochs: int, losses: list[float], lr: float = 1e-3):
    report("fit", {"algorithm": "two_tower", "unit": "epoch", "total": epochs})
    best = 0
    for epoch, loss in enumerate(losses, start=1):
        best = epoch if loss <= min(losses[:epoch]) else best
        report("epoch", {"algorithm": "two_tower", "epoch": epoch, "epochs": epochs, "train_loss": loss + 1,
                         "val_loss": loss, "lr": lr, "best_epoch": best})


def fractions(writes, phase: int, algorithm: str) -> list[float]:
    return [w["phases"][phase]["algorithms"][algorithm]["fraction"] for w in writes
            if len(w["phases"]) > phase and algorithm in w["phases"][phase]["algorithms"]]


def test_each_phase_has_its_own_progress_and_none_goes_back(recorded):
    """Where one field held every fit's epoch (epoch 9 of the first fit, then 2 of the next), each phase keeps
    its own: the first fit stays done at 10 of 10 while the next counts from 1."""
    report, writes, said = recorded
    report.plan(["validation", "final_fit"])
    report.begin("validation", ["two_tower"])
    two_tower_fit(report, 10, [5 - 0.1 * n for n in range(10)])
    report.begin("final_fit", ["two_tower"])
    two_tower_fit(report, 10, [4, 3.5, 3.6])
    first, second = writes[-1]["phases"]
    assert (first["name"], second["name"]) == ("validation", "final_fit")
    assert first["algorithms"]["two_tower"] | {"finished": True, "fraction": 1.0, "done": 10, "total": 10} \
        == first["algorithms"]["two_tower"]
    assert first["seconds"] is not None and second["seconds"] is None  # the second still runs
    entry = second["algorithms"]["two_tower"]
    assert (entry["done"], entry["total"], entry["fraction"], entry["finished"]) == (3, 10, 0.3, False)
    assert entry["val_loss"] == [4, 3.5, 3.6] and entry["lr"] == [1e-3] * 3 and entry["best_epoch"] == 2
    assert len(first["algorithms"]["two_tower"]["train_loss"]) == 10  # its losses stay its own
    for phase in (0, 1):
        shares = fractions(writes, phase, "two_tower")
        assert shares == sorted(shares) and shares[-1] > 0
    # The top-level fields, as the API always answered them, are the latest fit's, with its phase named.
    top = writes[-1]
    assert (top["epoch"], top["loss_phase"], top["phase"]) == (3, "final_fit", "final_fit")
    assert ("", "phase") in said and ("", "phase_done") in said


def test_settings_compared_count_inside_the_share_of_the_phase(recorded):
    report, writes, _ = recorded
    report.plan(["validation"])
    report.begin("validation", ["collaborative", "content_based"])
    for setting in (1, 2):
        report("fitting", {"algorithm": "collaborative", "setting": setting, "settings": 2})
        report("fit", {"algorithm": "collaborative", "unit": "iteration", "total": 4})
        for iteration in range(1, 5):
            report("iteration", {"algorithm": "collaborative", "iteration": iteration, "iterations": 4})
        report("setting", {"algorithm": "collaborative", "setting": setting, "settings": 2, "validation_ndcg": .1})
    report("component", {"algorithm": "collaborative", "seconds": 1.5, "ok": True})
    report.end()
    shares = fractions(writes, 0, "collaborative")
    assert shares == sorted(shares) and shares[-1] == 1.0
    entry = writes[-1]["phases"][0]["algorithms"]
    assert entry["collaborative"]["seconds"] == 1.5 and entry["collaborative"]["settings"] == 2
    # One that never began in the phase (nothing to do) ends done with it, said so.
    assert entry["content_based"]["finished"] and entry["content_based"]["skipped"]


def test_a_failed_component_is_marked_failed(recorded):
    report, writes, _ = recorded
    report.begin("validation", ["two_tower"])
    report("component", {"algorithm": "two_tower", "seconds": 0.1, "ok": False})
    report.end()
    entry = writes[-1]["phases"][0]["algorithms"]["two_tower"]
    assert entry["failed"] and entry["finished"]
    [row] = progress_table(writes[-1], running=False).rows
    assert row.cells[0].state == "failed"


def test_the_final_fit_keeps_each_algorithms_time_and_peak_memory(recorded):
    report, writes, said = recorded
    report.begin("final_fit", ["content_based", "ease"])
    report("fit", {"algorithm": "content_based", "unit": "step", "total": 4})
    report.fitted("content_based", seconds=0.02, peak_memory_mb=512.5, device="cpu")
    report("fit", {"algorithm": "ease", "unit": "step", "total": 3})
    report("step", {"algorithm": "ease", "step": 2, "steps": 3})
    # The run is written at most every WRITE_EVERY_SECONDS for steps, at once for the rest.
    report.fitted("ease", seconds=0.3, peak_memory_mb=600.0)
    entries = writes[-1]["phases"][0]["algorithms"]
    assert entries["content_based"] | {"seconds": 0.02, "peak_memory_mb": 512.5, "finished": True} \
        == entries["content_based"]
    assert entries["ease"]["peak_memory_mb"] == 600.0
    assert ("content_based", "fitted") in said
    [row] = progress_table(writes[-1], running=True).rows
    assert [cell.text for cell in row.cells] == ["0.02 s · 512 MB", "0.30 s · 600 MB"]


def test_a_later_part_carries_on_the_runs_progress_and_the_table_plans_the_rest():
    saved = {}
    first = RunProgress({}, lambda p: saved.update(copy.deepcopy(p)), clock=Clock())
    first.plan(["reading", "final_fit"], later=["reading", "final_fit", "measuring"])
    first.begin("reading")
    first.begin("final_fit", ["content_based"])
    first.fitted("content_based", seconds=0.1, peak_memory_mb=500.0)
    first.end()
    table = progress_table(saved, running=True)
    assert [row.state for row in table.rows] == ["done", "done", "pending", "pending", "pending"]
    assert table.percent == 40
    second = RunProgress(copy.deepcopy(saved), lambda p: saved.update(copy.deepcopy(p)), clock=Clock())
    second.plan(["reading", "final_fit", "measuring"])
    second.begin("reading")
    assert [phase["part"] for phase in saved["phases"]] == [1, 1, 2]
    table = progress_table(saved, running=True)
    assert [row.state for row in table.rows] == ["done", "done", "running", "pending", "pending"]
    assert table.percent == 40  # the run's share never goes back as its next part begins


def test_the_runs_share_done_only_grows_as_algorithms_begin_one_after_the_other(recorded):
    report, writes, _ = recorded
    report.plan(["validation", "final_fit"])
    report.begin("validation", ["content_based", "two_tower", "popularity"])
    report("fit", {"algorithm": "content_based", "unit": "step", "total": 4})
    report("component", {"algorithm": "content_based", "seconds": 0.1, "ok": True})
    two_tower_fit(report, 4, [3, 2, 1, 0.5])
    report("component", {"algorithm": "two_tower", "seconds": 2.0, "ok": True})
    report("component", {"algorithm": "popularity", "seconds": 0.0, "ok": True})
    report.begin("final_fit", ["content_based"])
    report.end()
    shares = [progress_table(w, running=True).percent for w in writes]
    assert shares == sorted(shares) and shares[-1] == 100


def test_the_table_says_what_each_algorithm_is_doing_while_it_runs(recorded):
    report, writes, _ = recorded
    report.plan(["validation", "final_fit"])
    report.begin("validation", ["collaborative", "two_tower"])
    report("fitting", {"algorithm": "collaborative", "setting": 3, "settings": 8})
    report("fit", {"algorithm": "collaborative", "unit": "iteration", "total": 15})
    report("iteration", {"algorithm": "collaborative", "iteration": 7, "iterations": 15})
    report("setting", {"algorithm": "collaborative", "setting": 3, "settings": 8, "validation_ndcg": 0.1})
    table = progress_table(writes[-1], running=True)
    assert [label for _, label in table.columns] == ["Collaborative filtering", "Two-Tower"]
    running, pending = table.rows
    assert running.state == "running" and pending.state == "pending" and pending.label == "Final fit on all the data"
    assert running.cells[0].text == "setting 3 of 8 · iteration 15 of 15" and running.cells[0].percent == 38
    assert (running.cells[1].text, running.cells[1].state) == ("waiting", "pending")
    # The same progress once its run stopped there: the phase that was open is where it stopped.
    stopped = progress_table(writes[-1], running=False)
    assert [row.state for row in stopped.rows] == ["stopped"]


def test_loss_fits_read_every_fit_in_epochs_and_runs_recorded_before_phases():
    report_writes = []
    report = RunProgress({}, lambda p: report_writes.append(copy.deepcopy(p)), clock=Clock())
    report.begin("validation", ["two_tower"])
    two_tower_fit(report, 2, [2, 1])
    report.begin("final_fit", ["two_tower"])
    two_tower_fit(report, 2, [3, 2])
    fits = loss_fits(report_writes[-1])
    assert [title for title, _ in fits] == ["Two-Tower: choosing settings on validation",
                                            "Two-Tower: final fit on all the data"]
    assert fits[1][1]["val_loss"] == [3, 2] and fits[1][1]["best_epoch"] == 2
    assert progress.final_fit_losses(report_writes[-1], "two_tower")["train_loss"] == [4, 3]
    old = {"algorithm": "two_tower", "epoch": 2, "epochs": 2, "train_loss": [1.0, 0.5], "val_loss": [1.2, 0.9]}
    assert loss_fits(old) == [("Two-Tower", old)]
    assert loss_fits({}) == [] and progress_table({}, running=False).rows == []
