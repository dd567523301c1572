"""Accuracy regression on the bundled mouse_brain sample (real H&E spot layout, counts
summed from real hippocampus cells placed by an anatomical drawing, exact ground truth),
through the CLI's code path.

Measured on the anatomical sample (docs/benchmarks.md, CPU, default settings): STL NMF RMSE
0.0889 at seed 0 (0.0885 and 0.0878 at seeds 1 and 2) vs NNLS 0.1001, a ratio of 0.89, and
vs the plain (unweighted) KL update 0.0879. STL NMF does **not** beat plain KL on this
sample (1.1 % worse at seed 0); the test allows 0.093 absolute, a ratio of 0.93 to NNLS and
3 % over plain KL, for seed and machine noise.
"""

import warnings

import numpy as np

from napari_stlnmf.core.metrics import rmse
from napari_stlnmf.io.reference import reference_from_anndata
from napari_stlnmf.io.samples import load_sample
from napari_stlnmf.pipeline import deconvolve, prepare, train


def test_stlnmf_beats_nnls_on_the_bundled_sample():
    sample = load_sample("mouse_brain")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = reference_from_anndata(sample.reference, sample.label_key)
    prep = prepare(sample.spatial, ref, regions=sample.regions)
    types = list(sample.truth.columns)
    truth = sample.truth.to_numpy()
    scores = {}
    for method in ("stlnmf", "nnls", "plainkl"):
        model = train(prep, method=method, seed=0, device="cpu")
        pred = deconvolve(prep, model).proportions.loc[sample.truth.index, types].to_numpy()
        assert np.isfinite(pred).all()
        scores[method] = rmse(pred, truth)
    assert scores["stlnmf"] < 0.093, scores
    assert scores["stlnmf"] < 0.93 * scores["nnls"], scores
    assert scores["stlnmf"] < 1.03 * scores["plainkl"], scores
