"""Estimator settings: checked once at the start of fit/transform, get_params/set_params
derived from the constructor, JSON all the way."""

import inspect
import json
import math

import numpy as np
import pytest

from napari_stlnmf import NNLS, STLNMF, PlainKL
from napari_stlnmf.core import InvalidParameterError
from napari_stlnmf.core.simulate import SimulationSettings, simulate_demo_slide


@pytest.fixture(scope="module")
def tiny():
    return simulate_demo_slide(n_rows=8, n_cols=9, n_types=3, n_genes=30, seed=5)


def _args(d):
    return d["reference"], d["coords"], d["regions"]


BAD = [
    ("n_train_slides", 0),  # was a ZeroDivisionError at the end of epoch 1
    ("n_val_slides", 0),  # was a ZeroDivisionError before training
    ("epochs", -1),  # was silently 0
    ("epochs", 2.5),
    ("epochs", True),
    ("n_layers", 0),
    ("warm_start", -1),
    ("lr", 0),
    ("lr", -0.1),
    ("lr", math.nan),
    ("lr", "0.1"),
    ("patience", 0),
    ("radius", 0.0),
    ("radius", -1.5),
    ("radius", math.inf),
    ("max_train_spots", 1),
    ("data_term", "poisson"),
    ("group", "regions"),
    ("update", "newton"),
    ("tied", "yes"),
    ("holdout_cells", 1),
    ("randomise", None),
    ("random_state", -1),
    ("random_state", None),
    ("device", "gpu"),
    ("device", 0),
    ("prior", "automatic"),
    ("prior", [[1.0, -1.0, 0.5]]),
    ("prior", [1.0, 2.0, 3.0]),
    ("init", {"lambda9": 1.0}),
    ("init", {"lambda1": 0.0}),
    ("init", {"warm_start": -3}),
    ("init", [0.1]),
    ("simulation", {"depthh": 0.5}),
    ("simulation", "cells"),
]


@pytest.mark.parametrize("name, value", BAD, ids=[f"{n}={v!r}" for n, v in BAD])
def test_bad_setting_fails_at_the_start_of_fit_naming_it(tiny, name, value, monkeypatch):
    from napari_stlnmf.core import estimator

    def never(*a, **k):
        raise AssertionError("work started before the settings were checked")

    monkeypatch.setattr(estimator, "training_slides", never)
    monkeypatch.setattr(estimator, "resolve_device", never)
    est = STLNMF(**{"epochs": 1, name: value})
    with pytest.raises(InvalidParameterError) as info:
        est.fit(*_args(tiny), X=tiny["counts"])
    text = str(info.value)
    assert f"'{name}'" in text and "must be" in text, text
    assert isinstance(info.value, ValueError)
    assert not hasattr(est, "net_")


def test_gene_weights_typo_is_caught_even_without_training(tiny):
    """It used to be checked only when a data term was built: never in fit with epochs=0."""
    with pytest.raises(
        ValueError, match=r"'gene_weights' must be one of 'auto', 'fano', 'none'; got 'fanno'"
    ):
        STLNMF(epochs=0, gene_weights="fanno").fit(*_args(tiny))


def test_transform_checks_the_settings_it_uses(tiny):
    ref, coords, regions = _args(tiny)
    est = STLNMF(epochs=0).fit(ref, coords, regions)
    est.set_params(gene_weights="None")
    with pytest.raises(InvalidParameterError, match="gene_weights"):
        est.transform(tiny["counts"], coords, regions)
    est.set_params(gene_weights="none", radius=-1)
    with pytest.raises(InvalidParameterError, match="radius"):
        est.transform(tiny["counts"], coords, regions)


def test_prior_of_the_wrong_shape_fails_before_training(tiny):
    ref, coords, regions = _args(tiny)
    n_regions = len(set(regions.tolist()))
    with pytest.raises(ValueError, match=rf"prior must have shape \({n_regions}, 3\)"):
        STLNMF(epochs=0, prior=np.ones((n_regions + 1, 3))).fit(ref, coords, regions)


def test_good_edge_values_are_accepted(tiny):
    ref, coords, regions = _args(tiny)
    est = STLNMF(
        epochs=np.int64(0),
        n_layers=1,
        warm_start=0,
        lr=1,
        radius=np.float32(2.0),
        tied=np.bool_(False),
        device="CPU",
        init={"lambda1": 0.5, "warm_start": 2},
        simulation={"depth": 0.5},
        prior=np.full((len(set(regions.tolist())), 3), 1.0),
    )
    assert est.fit(ref, coords, regions) is est


@pytest.mark.parametrize("cls", [STLNMF, PlainKL, NNLS])
def test_constraints_cover_exactly_the_constructor(cls):
    names = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    assert list(cls._parameter_constraints) == names
    assert list(cls().get_params()) == names


def test_get_params_is_json_and_rebuilds_the_estimator(tiny):
    ref, coords, regions = _args(tiny)
    n_regions = len(set(regions.tolist()))
    est = STLNMF(
        epochs=1,
        n_layers=4,
        warm_start=5,
        n_train_slides=1,
        n_val_slides=1,
        simulation=SimulationSettings(depth=0.5, platform_sigma=0.1),
        prior=np.array([[1.0, 2.0, 1.0]] * n_regions),
        init={"lambda2": 0.02},
        device="cpu",
        random_state=4,
    )
    params = est.get_params()
    assert params["simulation"]["depth"] == 0.5 and params["prior"][0] == [1.0, 2.0, 1.0]
    copy = STLNMF(**json.loads(json.dumps(params)))
    assert copy.get_params() == params
    est.fit(ref, coords, regions, X=tiny["counts"])
    copy.fit(ref, coords, regions, X=tiny["counts"])
    assert copy.learned_parameters() == est.learned_parameters()
    assert est.get_params() == params  # fit changes no setting


def test_set_params(tiny):
    est = STLNMF()
    assert est.set_params(epochs=3, lr=0.05) is est
    assert est.epochs == 3 and est.lr == 0.05
    with pytest.raises(ValueError, match="no setting 'epoch'.*epochs"):
        est.set_params(epoch=3)


def test_baseline_settings_are_checked(tiny):
    ref = tiny["reference"]
    with pytest.raises(InvalidParameterError, match="'n_iter'"):
        PlainKL(n_iter=0).fit(ref)
    with pytest.raises(InvalidParameterError, match="'device'"):
        PlainKL(device="tpu").fit(ref)
    with pytest.raises(InvalidParameterError, match="'cell_fractions'"):
        NNLS(cell_fractions="yes").fit(ref)
    assert PlainKL(n_iter=7).get_params() == {"n_iter": 7, "device": "auto"}
