"""Rules written once and used by the CLI, the widget and the readers: the one-line error
message, "these are not raw counts", the dominant type, the slide's uns library, a run
folder, and truth scoring."""

from __future__ import annotations

import json
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from napari_stlnmf.core.metrics import score, truth_metrics
from napari_stlnmf.io.counts import non_integer
from napari_stlnmf.io.errors import InputError, one_line
from napari_stlnmf.io.export import (
    RUN_FILES,
    dominant_index,
    dominant_names,
    proportions_table,
    region_means,
    write_run,
)
from napari_stlnmf.io.visium import image_scale, library, spot_diameter


# ------------------------------------------------------------------------ one line
def test_one_line_collapses_whitespace_and_names_empty_errors():
    assert one_line("a\n  b\tc ") == "a b c"
    assert one_line(ValueError("x\ny")) == "x y"
    assert one_line(KeyError()) == "KeyError"
    assert one_line("") == ""


def test_one_line_cuts_long_text_at_the_limit():
    text = one_line("word " * 100, limit=20)
    assert len(text) == 20 and text.endswith("...")
    assert one_line("short", limit=20) == "short"


# ------------------------------------------------------------------- not raw counts
@pytest.mark.parametrize(
    "values, expected",
    [
        (np.array([[0, 3], [5, 1]], dtype=np.int32), False),
        (np.array([[0.0, 3.0], [5.0, 1.0]]), False),
        (np.array([[0.0, 3.0], [5.0, 1.0]], dtype=np.float32), False),
        (np.array([[0.0, 3.0 + 1e-9], [5.0, 1.0]]), False),  # round-off
        (np.array([[0.0, 3.5], [5.0, 1.0]]), True),  # normalised
        (np.array([[0.0, 3.0], [np.nan, 1.0]]), True),  # NaN is no count
        (np.zeros((0, 3)), False),
    ],
)
def test_non_integer_rule(values, expected):
    assert non_integer(values) is expected
    assert non_integer(sp.csr_matrix(values)) is expected


def test_non_integer_checks_every_value():
    values = np.ones(3_000_000)
    values[-1] = 0.5  # far beyond the first chunk
    assert non_integer(values)


def test_slide_and_reference_readers_share_the_rule(tmp_path):
    """A slide (.h5ad) and a reference judge the same matrix alike."""
    from napari_stlnmf.io.reference import reference_from_anndata
    from napari_stlnmf.io.tables import read_h5ad_spatial

    rng = np.random.default_rng(0)
    counts = rng.poisson(3.0, (60, 8)).astype(np.float32)
    normalised = np.log1p(counts / counts.sum(1, keepdims=True) * 1e4).astype(np.float32)
    slide = ad.AnnData(sp.csr_matrix(normalised), layers={"counts": sp.csr_matrix(counts)})
    slide.obsm["spatial"] = rng.uniform(0, 100, (60, 2))
    slide.obs_names = [f"s{i}" for i in range(60)]
    slide.var_names = [f"g{i}" for i in range(8)]
    slide.write_h5ad(tmp_path / "slide.h5ad")
    read = read_h5ad_spatial(tmp_path / "slide.h5ad")
    np.testing.assert_array_equal(read.X.toarray(), counts)  # counts layer chosen

    cells = slide.copy()
    cells.obs["cell_type"] = ["a", "b"] * 30
    ref = reference_from_anndata(cells, "cell_type")
    np.testing.assert_array_equal(ref.cells.toarray(), counts)  # counts layer chosen


# ------------------------------------------------------------------- dominant type
def test_dominant_index_and_names():
    values = np.array([[0.2, 0.8], [0.5, 0.5], [np.nan, np.nan], [0.9, 0.1]])
    np.testing.assert_array_equal(dominant_index(values), [1, 0, -1, 0])
    names = dominant_names(values, ["A", "B"])
    assert names.dtype == object and list(names) == ["B", "A", "", "A"]
    assert list(dominant_names(values, ["A", "B"], none="(none)"))[2] == "(none)"
    assert dominant_index(np.zeros((0, 2))).shape == (0,)


# --------------------------------------------------------------------- uns library
def _slide(libs):
    a = ad.AnnData(np.zeros((2, 1)))
    if libs is not None:
        a.uns["spatial"] = libs
    return a


def test_library_lookup():
    lib = {"images": {}, "scalefactors": {"tissue_hires_scalef": 0.5}}
    other = {"images": {}, "scalefactors": {"tissue_hires_scalef": 0.25}}
    assert library(_slide(None)) == (None, {})
    assert library(_slide({"s1": lib})) == ("s1", lib)
    assert library(_slide({"s1": lib, "s2": other})) == ("s1", lib)  # the first
    assert library(_slide({"s1": lib, "s2": other}), "s2") == ("s2", other)
    with pytest.raises(KeyError):
        library(_slide({"s1": lib}), "s9")
    assert image_scale(_slide({"s1": lib}), "hires") == 0.5
    assert image_scale(_slide({"s1": lib}), "fullres") == 1.0
    with pytest.raises(KeyError):
        image_scale(_slide({"s1": lib}), "lowres")
    assert spot_diameter(_slide({"s1": lib})) is None
    assert spot_diameter(_slide(None)) is None


# ----------------------------------------------------------------------- run folder
@dataclass
class _Result:
    table: pd.DataFrame
    region_means: pd.DataFrame
    cell_types: list
    metadata: dict


def _run():
    types = ["A", "B"]
    props = np.array([[0.25, 0.75], [np.nan, np.nan], [1.0, 0.0]])
    table = proportions_table(["s1", "s2", "s3"], np.ones((3, 2)), [1, 1, 2], props, types)
    adata = ad.AnnData(np.zeros((3, 1)))
    adata.obs_names = ["s1", "s2", "s3"]
    meta = {"seed": 0, "timings": {"train_seconds": 1.0}}
    return adata, _Result(table, region_means(table, types), types, meta)


def test_write_run_writes_the_five_files(tmp_path):
    adata, result = _run()
    out = write_run(tmp_path / "a" / "run", adata, result, started=0.0)
    assert sorted(p.name for p in out.iterdir()) == sorted(RUN_FILES)
    meta = json.loads((out / "run.json").read_text())
    assert meta["seed"] == 0 and meta["timings"]["total_seconds"] > 0
    h5 = ad.read_h5ad(out / "result.h5ad")
    assert list(h5.obs["stlnmf_dominant_type"].astype(str)) == ["B", "", "A"]
    write_run(tmp_path / "b", adata, result, figure=False)
    assert "proportions.png" not in {p.name for p in (tmp_path / "b").iterdir()}


def test_write_run_is_all_or_none(tmp_path, monkeypatch):
    import napari_stlnmf.io.export as export

    adata, result = _run()
    out = write_run(tmp_path / "run", adata, result, figure=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export, "write_json", broken)
    result.metadata["seed"] = 1
    with pytest.raises(InputError, match="No space left on device; the files already there"):
        write_run(out, adata, result, figure=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_write_run_into_a_file_is_input_error(tmp_path):
    adata, result = _run()
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="could not write the outputs"):
        write_run(tmp_path / "file" / "run", adata, result, figure=False)


# ------------------------------------------------------------------- truth scoring
def test_truth_metrics_rules():
    truth = pd.DataFrame(
        [[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.2, 0.2, 0.6]],
        index=["s1", "s2", "s3", "s4"],
        columns=["A", "B", "C"],
    )
    # s3 has no prediction (NaN row); type C is unknown to the model; extra spot s9
    pred = pd.DataFrame(
        [[0.4, 0.6], [0.9, 0.1], [np.nan, np.nan], [0.5, 0.5], [0.3, 0.7]],
        index=["s1", "s2", "s3", "s4", "s9"],
        columns=["A", "B"],
    )
    got = truth_metrics(pred, truth)
    assert set(got) == {"rmse", "jsd", "pearson"}
    keep = ["s1", "s2", "s4"]
    p = np.column_stack([pred.loc[keep].to_numpy(), np.zeros(3)])
    expected = score(p, truth.loc[keep].to_numpy())
    assert got == pytest.approx(expected)
    # scoring the shared types only is a choice the caller makes explicitly
    sub = truth_metrics(pred, truth, ["A", "B"])
    assert sub == pytest.approx(score(pred.loc[keep].to_numpy(), truth.loc[keep, ["A", "B"]]))
