"""One registry of estimators, choices and options for the CLI, the widget and the
pipeline (:mod:`napari_stlnmf.options`)."""

import inspect

import pytest

from napari_stlnmf._cli_args import build_parser
from napari_stlnmf.core import NNLS, STLNMF, PlainKL
from napari_stlnmf.io.errors import InputError
from napari_stlnmf.options import ESTIMATORS, RunOptions, make_estimator, uses_device


def _action(parser, dest, command="deconvolve"):
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return next(a for a in sub._actions if a.dest == dest)


def test_cli_choices_and_defaults_come_from_the_registry():
    parser = build_parser()
    assert (
        tuple(_action(parser, "method").choices)
        == tuple(ESTIMATORS)
        == (
            "stlnmf",
            "plainkl",
            "nnls",
        )
    )
    assert _action(parser, "method").default == "stlnmf"
    assert tuple(_action(parser, "fractions").choices) == ("cells", "mrna")
    assert tuple(_action(parser, "gene_weights").choices) == ("auto", "fano", "none")
    assert tuple(_action(parser, "genes").choices) == ("auto", "markers", "all")
    assert _action(parser, "genes").default == "auto"
    assert tuple(_action(parser, "data_term").choices) == ("kl", "frobenius")
    defaults = RunOptions()
    for dest, field in [
        ("epochs", "epochs"),
        ("layers", "n_layers"),
        ("warm_start", "warm_start"),
        ("gene_weights", "gene_weights"),
        ("data_term", "data_term"),
        ("interval_slides", "interval_slides"),
    ]:
        for command in ("deconvolve", "train"):
            assert _action(parser, dest, command).default == getattr(defaults, field)


def test_run_options_defaults_are_the_estimators():
    params = inspect.signature(ESTIMATORS["stlnmf"]).parameters
    opts = RunOptions().estimator_options("stlnmf")
    assert opts == {k: params[k].default for k in opts}
    assert set(opts) == {
        "epochs",
        "n_layers",
        "warm_start",
        "gene_weights",
        "data_term",
        "tied",
        "lr",
        "n_train_slides",
        "interval_slides",
    }
    # the baselines have nothing to train: no options reach them
    assert RunOptions(epochs=3).estimator_options("plainkl") == {}
    assert RunOptions(epochs=3).estimator_options("nnls") == {}
    with pytest.raises(InputError, match="unknown method 'nmf'"):
        RunOptions().estimator_options("nmf")


def test_make_estimator_gives_seed_and_device_to_those_that_take_them():
    est = make_estimator("stlnmf", seed=7, device="cpu", options=RunOptions(epochs=3))
    assert isinstance(est, STLNMF)
    assert (est.random_state, est.device, est.epochs, est.tied) == (7, "cpu", 3, True)
    est = make_estimator("plainkl", seed=7, device="cpu", options=RunOptions(epochs=3))
    assert isinstance(est, PlainKL) and est.device == "cpu"
    assert isinstance(make_estimator("nnls", seed=7, device="cuda"), NNLS)
    assert make_estimator("stlnmf", options={"n_layers": 4}).n_layers == 4
    assert uses_device("stlnmf") and uses_device("plainkl") and not uses_device("nnls")
    with pytest.raises(InputError, match="choose one of stlnmf, plainkl, nnls"):
        make_estimator("nmf")
