"""Training feedback in the dock: the outcome sentence (which network a run kept), the
learned-parameters table and the loss plot (placeholder, legend outside the axes)."""

from types import SimpleNamespace

import numpy as np
import pytest

from napari_stlnmf.training_report import summarise_history, training_outcome


def history(*val, train=0.05):
    return [
        {"epoch": i, "train_rmse": train, "val_rmse": v, "seconds": i} for i, v in enumerate(val)
    ]


def fake_model(val, epochs):
    return SimpleNamespace(history_=history(*val) if val else [], epochs=epochs)


# --------------------------------------------------------------------- outcome sentence
def test_outcome_names_start_best_and_best_epoch():
    model = fake_model([0.0841, 0.081, 0.0788, 0.0795], epochs=3)
    assert training_outcome(model, 28.84) == (
        "trained in 28.8 s: validation RMSE 0.084 → 0.079 (best at epoch 2 of 3)"
    )


def test_outcome_says_when_validation_never_improved():
    model = fake_model([0.084, 0.085, 0.0843, 0.09], epochs=3)
    text = training_outcome(model, 28.8)
    assert text == (
        "validation did not improve in 3 epochs (RMSE 0.084): the untrained network is "
        "kept (28.8 s)"
    )
    assert "trained in" not in text


def test_gains_below_the_training_tolerance_are_not_improvements():
    # train_network keeps a new state only for a drop of more than 1e-6
    s = summarise_history(history(0.084, 0.0839995, 0.0839991), 2)
    assert s.best_epoch == 0 and not s.improved
    s = summarise_history(history(0.084, 0.0839985, 0.0839991), 2)
    assert s.best_epoch == 1 and s.best_rmse == pytest.approx(0.0839985)


def test_outcome_without_training_and_early_stop_and_small_gains():
    assert training_outcome(fake_model([], epochs=0), 0.34) == (
        "epochs=0: untrained network (plain STL NMF updates) (0.3 s)"
    )
    # stopped by patience after 7 of 20 planned epochs
    model = fake_model([0.09, 0.085, 0.08, 0.081, 0.082, 0.083, 0.084, 0.085], epochs=20)
    assert training_outcome(model, 5.0) == (
        "trained in 5.0 s: validation RMSE 0.090 → 0.080 (best at epoch 2 of 7); "
        "stopped early, no gain after epoch 2"
    )
    # a real but small gain gets the digits to show it
    text = training_outcome(fake_model([0.08412, 0.08396], epochs=1), 1.0)
    assert "0.0841 → 0.0840" in text
    # a loaded model (no time) and an estimator without history
    assert training_outcome(fake_model([0.1, 0.09], epochs=1)).startswith(
        "trained: validation RMSE 0.100 → 0.090"
    )
    assert training_outcome(SimpleNamespace(), 2.0) == "trained in 2.0 s"


@pytest.fixture(scope="module")
def prepared_sample():
    from napari_stlnmf.io.reference import reference_from_anndata
    from napari_stlnmf.io.samples import load_sample
    from napari_stlnmf.pipeline import prepare

    sample = load_sample("mouse_brain")
    ref = reference_from_anndata(sample.reference, "cell_type")
    return prepare(sample.spatial, ref)


SMALL = {"n_layers": 3, "warm_start": 20, "max_train_spots": 300, "n_train_slides": 1}


@pytest.mark.parametrize("lr", [1e-9, 0.3])
def test_outcome_matches_the_network_the_model_kept(prepared_sample, lr):
    """The reported best epoch is the one whose parameters the model holds: with a step
    too small to change anything, the untrained (initial) parameters are kept."""
    from napari_stlnmf.core.network import NetConfig
    from napari_stlnmf.pipeline import train

    model = train(prepared_sample, seed=0, device="cpu", options={**SMALL, "epochs": 2, "lr": lr})
    summary = summarise_history(model.history_, model.epochs)
    learned = model.learned_parameters()
    init = NetConfig(n_types=1)
    untouched = np.allclose(
        [learned[k][0] for k in ("lambda1", "lambda2", "lambda3", "sigma1", "sigma2")],
        [init.lambda1, init.lambda2, init.lambda3, init.sigma1, init.sigma2],
        rtol=1e-5,
    )
    text = training_outcome(model, 1.0)
    if lr < 1e-6:
        assert not summary.improved and untouched
        assert text.startswith("validation did not improve in 2 epochs")
    else:  # whichever happened, sentence and parameters agree
        assert summary.improved == (not untouched)
        assert text.startswith("trained in 1.0 s") == summary.improved


# --------------------------------------------------------------------- parameters table
PARAMS = {
    "lambda1": [0.021345],
    "lambda2": [0.0055213],
    "lambda3": [0.018],
    "sigma1": [1.8234],
    "sigma2": [12.345],
    "omega": {"1": [1.11, 0.8472, 0.000012], "2": [1.28, 1.19, 2.0]},
}


def test_parameter_rows_have_symbols_values_and_meanings():
    from napari_stlnmf.gui.params_table import format_value, omega_rows, parameter_rows

    rows = parameter_rows(PARAMS)
    assert [r[0] for r in rows] == ["λ1", "λ2", "λ3", "σ1", "σ2"]
    assert [r[1] for r in rows] == ["0.0213", "0.00552", "0.018", "1.82", "12.3"]
    assert all(15 < len(r[2]) <= 32 for r in rows)  # a short meaning for each
    assert "spot spacings" in rows[3][2]
    assert format_value(1e-5) == "1.00e-05" and format_value(1.0) == "1"
    # untied layers: mean and range instead of a list of 8 numbers
    untied = parameter_rows({"lambda1": [0.01, 0.02, 0.03, 0.04, 0.01, 0.02, 0.03, 0.04]})
    assert untied == [("λ1", "0.025 (0.01–0.04 over 8 layers)", untied[0][2])]
    types, regions, cells = omega_rows(PARAMS, ["Astro", "Neuron", "Oligo"])
    assert types == ["Astro", "Neuron", "Oligo"] and regions == ["1", "2"]
    assert cells == [["1.11", "1.28"], ["0.847", "1.19"], ["1.20e-05", "2"]]
    assert omega_rows(PARAMS)[0] == ["type 1", "type 2", "type 3"]


def test_params_table_widget(qtbot):
    from napari_stlnmf.gui.params_table import ParamsTable

    table = ParamsTable()
    qtbot.addWidget(table)
    assert table.is_empty and table.toPlainText() == ""
    assert table.placeholder.text() == "learned parameters appear after training"
    table.set_parameters(PARAMS, ["Astro", "Neuron", "Oligo"])
    s, om = table.scalars, table.omega
    assert s.rowCount() == 5 and s.columnCount() == 2
    assert [s.verticalHeaderItem(i).text() for i in range(5)] == ["λ1", "λ2", "λ3", "σ1", "σ2"]
    assert s.item(0, 0).text() == "0.0213" and s.item(0, 1).text() == "smoothing between neighbours"
    assert "neighbouring spots" in s.item(0, 1).toolTip()  # the longer explanation
    assert (om.rowCount(), om.columnCount()) == (3, 2)
    assert om.verticalHeaderItem(1).text() == "Neuron"
    assert om.horizontalHeaderItem(1).text() == "2"
    assert om.item(1, 0).text() == "0.847"
    # read-only cells
    assert not om.item(1, 0).flags() & om.item(1, 0).flags().ItemIsEditable
    text = table.toPlainText()
    assert text.splitlines()[:2] == ["λ1 = 0.0213", "λ2 = 0.00552"]
    assert "Neuron\t0.847\t1.19" in text and "ω\tregion 1\tregion 2" in text
    table.clear("another slide")
    assert table.is_empty and table.placeholder.text() == "another slide"
    assert s.rowCount() == 0 and om.rowCount() == 0


# --------------------------------------------------------------------- loss plot
def test_loss_plot_placeholder_then_curves_with_legend_below(qtbot):
    from napari_stlnmf.gui.loss_plot import PLACEHOLDER, LossPlot

    plot = LossPlot()
    qtbot.addWidget(plot)
    assert plot.is_placeholder
    assert not plot.ax.get_visible() and plot.legend is None
    assert plot._placeholder.get_visible() and plot._placeholder.get_text() == PLACEHOLDER

    plot.clear(n_epochs=5)
    plot.add(0, 0.062, 0.084)
    assert not plot.is_placeholder and plot.ax.get_visible()
    assert not plot._placeholder.get_visible()
    # the x range is the whole planned run from the first point (no ±0.04 around epoch 0)
    lo, hi = plot.ax.get_xlim()
    assert lo < 0 < 5 < hi < 6
    for e, (t, v) in enumerate([(0.061, 0.082), (0.060, 0.081)], start=1):
        plot.add(e, t, v)
    ticks = [t for t in plot.ax.get_xticks() if lo <= t <= hi]
    assert all(float(t).is_integer() for t in ticks)
    ylo, yhi = plot.ax.get_ylim()
    assert ylo <= 0.060 and yhi >= 0.084 and yhi - ylo < 0.05
    plot.figure.canvas.draw()
    legend = plot.legend.get_window_extent()
    axes = plot.ax.get_window_extent()
    assert legend.y1 <= axes.y0  # below the axes: it covers no curve
    assert [t.get_text() for t in plot.legend.get_texts()] == [
        "train (simulated)",
        "validation (simulated)",
    ]
    plot.clear()
    assert plot.is_placeholder and plot.legend is None and not plot.ax.get_visible()
