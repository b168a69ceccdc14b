"""The charts of the staff pages and admin, read back from their matplotlib figures: scaled to their data with
the values written on them, algorithm names as people read them, the learning rate and best epoch drawn."""
from recommendations import plots

VERSIONS = [("content_based", 2, {"ndcg": 0.126, "recall": 0.19, "coverage": 0.70, "users": 262}),
            ("content_based", 1, {"ndcg": 0.131, "recall": 0.20, "coverage": 0.71, "users": 262}),
            ("two_tower", 1, {"ndcg": 0.046, "recall": 0.08, "coverage": 0.27, "users": 262, "error": "x"})]


def texts(axes) -> list[str]:
    return [text.get_text() for text in axes.texts]


def test_each_metric_has_its_own_scale_and_its_values_written_on_the_bars():
    figure = plots.metrics_figure(VERSIONS)
    panels = {axes.get_title(): axes for axes in figure.axes if axes.get_visible()}
    assert list(panels) == ["NDCG@10", "recall@10", "coverage"]  # counts (users) and errors are not charted
    ndcg = panels["NDCG@10"]
    low, high = ndcg.get_xlim()
    assert low == 0 and 0.131 < high < 0.2  # not a 0-1 axis: 0.126 and 0.131 read apart
    assert panels["coverage"].get_xlim()[1] > 0.71
    assert texts(ndcg) == ["0.126", "0.131", "0.046"]
    assert [label.get_text() for label in ndcg.get_yticklabels()] == ["Content-based v2", "Content-based v1",
                                                                      "Two-Tower v1"]


def test_the_version_a_page_is_about_is_highlighted():
    figure = plots.metrics_figure(VERSIONS, highlight=("content_based", 1))
    ndcg = figure.axes[0]
    bold = [label.get_text() for label in ndcg.get_yticklabels() if label.get_fontweight() == "bold"]
    assert bold == ["Content-based v1"]
    alphas = sorted(patch.get_alpha() for patch in ndcg.patches)
    assert alphas == [0.45, 0.45, 1.0]


def test_the_loss_curves_draw_the_learning_rate_and_the_best_epoch():
    fit = {"train_loss": [3.0, 2.0, 1.5, 1.4], "val_loss": [2.5, 2.0, 2.1, 2.2], "lr": [1e-3, 1e-3, 1e-4, 1e-4],
           "best_epoch": 2}
    figure = plots.loss_curves_figure({"Two-Tower: final fit on all the data": fit, "old run": {
        "train_loss": [1.0], "val_loss": [1.0]}})
    losses, rates = figure.axes[0], figure.axes[-1]
    assert losses.get_title() == "Two-Tower: final fit on all the data"
    assert rates.get_ylabel() == "learning rate" and rates.get_yscale() == "log"  # the rate was cut: log scale
    assert any(text.startswith("best epoch 2") for text in texts(losses))
    assert [line.get_label() for line in losses.get_legend().get_lines()] == ["train", "validation", "learning rate"]
    assert figure.axes[1].get_title() == "old run"  # a run recorded before lr and best epoch were: its losses only


def test_the_served_chart_is_scaled_to_its_bars():
    group = {"ndcg": 0.05, "users": 10}
    served = {"metrics": {"all": {"ndcg": 0.06, "users": 20}, "by_role": {"developer": group},
                          "by_segment": {"heavy": group}},
              "popularity": {"all": {"ndcg": 0.04}, "by_role": {"developer": {"ndcg": 0.03}},
                             "by_segment": {"heavy": {"ndcg": 0.02}}}, "oracle": None}
    by_role, by_segment = plots.served_figure(served).axes
    assert 0.06 < by_role.get_ylim()[1] < 0.1
    assert "0.060" in texts(by_role) and "0.040" in texts(by_role)
    assert by_segment.get_ylim()[1] < 0.1


def test_the_pngs_are_pngs():
    assert plots.metrics_png(VERSIONS).startswith(b"\x89PNG")
    assert plots.loss_curves_png({"fit": {"train_loss": [1.0, 0.5], "val_loss": [1.1, 0.9]}}).startswith(b"\x89PNG")
