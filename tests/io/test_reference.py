"""Cell-type references from .h5ad, 10x MTX + labels CSV and signature tables."""

from __future__ import annotations

import re
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from napari_stlnmf.io.errors import InputError
from napari_stlnmf.io.reference import (
    SmallTypesWarning,
    read_reference,
    reference_from_anndata,
)
from tests.io.visium_fixtures import write_mtx

GENES = [f"G{i}" for i in range(6)]
# 3 kept types with known cell counts and one with only 2 cells (dropped at min_cells=3)
TYPE_COUNTS = {"alpha": 3, "beta": 4, "gamma": 3, "delta": 2}
KEPT = ["alpha", "beta", "gamma"]


def _cells():
    """Raw integer counts (cells x genes), labels interleaved, no empty cell."""
    labels = [t for t, n in TYPE_COUNTS.items() for _ in range(n)]
    rng = np.random.default_rng(3)
    order = rng.permutation(len(labels))
    labels = [labels[i] for i in order]
    counts = rng.integers(0, 20, size=(len(labels), len(GENES))) + 1
    barcodes = [f"cell{i:02d}" for i in range(len(labels))]
    return counts.astype(np.int64), np.array(labels), barcodes


def _adata(counts=None, labels=None, barcodes=None, key="cell_type"):
    c, lab, bc = _cells()
    counts = c if counts is None else counts
    labels = lab if labels is None else labels
    barcodes = bc if barcodes is None else barcodes
    obs = pd.DataFrame({key: labels, "batch": "b1"}, index=barcodes)
    return ad.AnnData(X=sp.csr_matrix(counts), obs=obs, var=pd.DataFrame(index=GENES))


def _expected():
    counts, labels, _ = _cells()
    x = counts.astype(float)
    lib = x.sum(1)
    norm = x / lib[:, None] * 1e4
    profiles = np.stack([norm[labels == t].mean(0) for t in KEPT], axis=1)
    libs = np.array([lib[labels == t].mean() for t in KEPT])
    means = np.stack([x[labels == t].mean(0) for t in KEPT], axis=1)
    return profiles, libs, means


def _write_h5ad(tmp_path, adata, name="ref.h5ad"):
    path = tmp_path / name
    adata.write_h5ad(path)
    return path


def _check_source(src):
    profiles, libs, means = _expected()
    assert src.cell_types == KEPT
    assert src.kind == "cells"
    np.testing.assert_allclose(src.profiles, profiles, rtol=1e-12)
    np.testing.assert_allclose(src.library_sizes, libs, rtol=1e-12)
    np.testing.assert_array_equal(src.n_cells, [3, 4, 3])
    idx = [0, 2, 5]
    ref = src.to_reference(idx, [GENES[i] for i in idx])
    assert ref.cell_types == KEPT
    assert ref.genes == ["G0", "G2", "G5"]
    np.testing.assert_allclose(ref.signatures, means[idx], rtol=1e-12)
    assert ref.cells.shape == (10, 3)
    np.testing.assert_array_equal(ref.n_cells_per_type, [3, 4, 3])


# ---------------------------------------------------------------------- h5ad route
def test_h5ad_small_type_dropped_and_numbers(tmp_path):
    path = _write_h5ad(tmp_path, _adata())
    with pytest.warns(SmallTypesWarning, match=r"delta \(2\)"):
        src = read_reference(path, "cell_type", min_cells=3)
    assert src.dropped_types == {"delta": 2}
    assert src.label_key == "cell_type"
    assert src.summary()["dropped_types"] == {"delta": 2}
    assert list(src.var.index) == GENES
    _check_source(src)


def test_h5ad_no_warning_when_all_types_big_enough(tmp_path):
    path = _write_h5ad(tmp_path, _adata())
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallTypesWarning)
        src = read_reference(path, "cell_type", min_cells=2)
    assert src.cell_types == ["alpha", "beta", "delta", "gamma"]
    assert src.dropped_types == {}


def test_empty_cells_are_left_out(tmp_path):
    counts, labels, barcodes = _cells()
    counts = np.vstack([counts, np.zeros((1, len(GENES)), dtype=np.int64)])
    labels = np.append(labels, "alpha")
    a = _adata(counts, labels, barcodes + ["empty"])
    with pytest.warns(SmallTypesWarning):
        src = reference_from_anndata(a, "cell_type", min_cells=3)
    _check_source(src)  # the all-zero cell changes neither counts nor means


def test_too_few_types_left(tmp_path):
    path = _write_h5ad(tmp_path, _adata())
    with pytest.warns(SmallTypesWarning), pytest.raises(InputError, match="at least 2"):
        read_reference(path, "cell_type", min_cells=4)  # only beta has >= 4 cells


def test_label_key_guessed(tmp_path):
    path = _write_h5ad(tmp_path, _adata())
    with pytest.warns(SmallTypesWarning):
        src = read_reference(path, min_cells=3)
    assert src.label_key == "cell_type"
    _check_source(src)


def test_wrong_label_key_lists_columns(tmp_path):
    path = _write_h5ad(tmp_path, _adata())
    with pytest.raises(InputError, match="no column 'celltypes'") as e:
        read_reference(path, "celltypes", min_cells=3)
    assert "cell_type" in str(e.value) and "batch" in str(e.value)


def test_no_guessable_label_key(tmp_path):
    path = _write_h5ad(tmp_path, _adata(key="my_annot"))
    with pytest.raises(InputError, match="--label-key") as e:
        read_reference(path, min_cells=3)
    assert "my_annot" in str(e.value)


def test_normalised_x_with_counts_layer(tmp_path):
    a = _adata()
    counts = a.X.toarray().astype(float)
    a.X = sp.csr_matrix(counts / counts.sum(1, keepdims=True) * 1e4)
    a.layers["counts"] = sp.csr_matrix(counts)
    path = _write_h5ad(tmp_path, a)
    with pytest.warns(SmallTypesWarning):
        src = read_reference(path, "cell_type", min_cells=3)
    _check_source(src)


def test_log_normalised_without_counts(tmp_path):
    a = _adata()
    counts = a.X.toarray().astype(float)
    a.X = sp.csr_matrix(np.log1p(counts / counts.sum(1, keepdims=True) * 1e4))
    path = _write_h5ad(tmp_path, a)
    with pytest.raises(InputError, match="raw counts") as e:
        read_reference(path, "cell_type", min_cells=3)
    assert "log-normalised" in str(e.value)


def test_negative_values(tmp_path):
    counts, labels, barcodes = _cells()
    counts[4, 2] = -3
    path = _write_h5ad(tmp_path, _adata(counts, labels, barcodes))
    with pytest.raises(InputError, match="negative"):
        read_reference(path, "cell_type", min_cells=3)


def test_corrupt_h5ad(tmp_path):
    path = _write_h5ad(tmp_path, _adata())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError, match=re.escape(str(path))) as e:
        read_reference(path, "cell_type", min_cells=3)
    assert "not a readable .h5ad" in str(e.value)


def test_missing_path(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_reference(tmp_path / "nope.h5ad", "cell_type")


def test_unknown_format(tmp_path):
    p = tmp_path / "ref.loom"
    p.write_bytes(b"x")
    with pytest.raises(InputError, match="unknown format"):
        read_reference(p)


def test_reference_from_anndata_equals_disk(tmp_path):
    a = _adata()
    path = _write_h5ad(tmp_path, a)
    with pytest.warns(SmallTypesWarning):
        mem = reference_from_anndata(a, "cell_type", min_cells=3)
    with pytest.warns(SmallTypesWarning):
        disk = read_reference(path, "cell_type", min_cells=3)
    assert mem.cell_types == disk.cell_types
    assert mem.dropped_types == disk.dropped_types
    np.testing.assert_array_equal(mem.profiles, disk.profiles)
    np.testing.assert_array_equal(mem.library_sizes, disk.library_sizes)
    np.testing.assert_array_equal(mem.labels, disk.labels)
    np.testing.assert_array_equal(mem.cells.toarray(), disk.cells.toarray())
    idx = [1, 3, 4]
    genes = [GENES[i] for i in idx]
    np.testing.assert_array_equal(
        mem.to_reference(idx, genes).signatures, disk.to_reference(idx, genes).signatures
    )
    _check_source(mem)


# ----------------------------------------------------------------------- MTX route
def _mtx(tmp_path):
    counts, labels, barcodes = _cells()
    folder = tmp_path / "mtx"
    write_mtx(folder, sp.csr_matrix(counts), barcodes, [f"ENS{g}" for g in GENES], GENES)
    return folder, labels, barcodes


def test_mtx_with_labels_matches_h5ad(tmp_path):
    folder, labels, barcodes = _mtx(tmp_path)
    table = pd.DataFrame({"barcode": barcodes, "cell_type": labels}).iloc[::-1]
    table.to_csv(tmp_path / "labels.csv", index=False)  # file order != matrix order
    with pytest.warns(SmallTypesWarning, match="delta"):
        src = read_reference(folder, labels=tmp_path / "labels.csv", min_cells=3)
    assert src.label_key == "cell_type"
    assert src.dropped_types == {"delta": 2}
    _check_source(src)
    h5 = _write_h5ad(tmp_path, _adata())
    with pytest.warns(SmallTypesWarning):
        other = read_reference(h5, "cell_type", min_cells=3)
    np.testing.assert_allclose(src.profiles, other.profiles, rtol=1e-12)
    idx = [0, 1, 2, 3, 4, 5]
    np.testing.assert_allclose(
        src.to_reference(idx, GENES).signatures,
        other.to_reference(idx, GENES).signatures,
        rtol=1e-12,
    )


def test_mtx_matrix_file_path_works_too(tmp_path):
    folder, labels, barcodes = _mtx(tmp_path)
    pd.DataFrame({"barcode": barcodes, "cell_type": labels}).to_csv(
        tmp_path / "labels.csv", index=False
    )
    with pytest.warns(SmallTypesWarning):
        src = read_reference(folder / "matrix.mtx.gz", labels=tmp_path / "labels.csv", min_cells=3)
    _check_source(src)


def test_mtx_without_labels(tmp_path):
    folder, _, _ = _mtx(tmp_path)
    with pytest.raises(InputError, match="--labels"):
        read_reference(folder, min_cells=3)


def test_mtx_labels_file_missing(tmp_path):
    folder, _, _ = _mtx(tmp_path)
    with pytest.raises(InputError, match="labels file not found"):
        read_reference(folder, labels=tmp_path / "absent.csv", min_cells=3)


def test_mtx_labels_missing_cells(tmp_path):
    folder, labels, barcodes = _mtx(tmp_path)
    pd.DataFrame({"barcode": barcodes[4:], "cell_type": labels[4:]}).to_csv(
        tmp_path / "labels.csv", index=False
    )
    with pytest.raises(InputError, match="no row for 4 of 12 cells") as e:
        read_reference(folder, labels=tmp_path / "labels.csv", min_cells=3)
    msg = str(e.value)
    assert all(b in msg for b in barcodes[:3])
    assert barcodes[3] not in msg  # a few named, not all


# ------------------------------------------------------------------ signature table
SIG = pd.DataFrame(
    {"A": [10.0, 0.0, 5.0, 5.0], "B": [1.0, 2.0, 3.0, 4.0], "C": [0.0, 8.0, 0.0, 2.0]},
    index=["g1", "g2", "g3", "g4"],
)


def test_signature_table(tmp_path):
    path = tmp_path / "sig.csv"
    SIG.to_csv(path)
    src = read_reference(path)
    assert src.kind == "signatures"
    assert src.cell_types == ["A", "B", "C"]
    assert list(src.var.index) == ["g1", "g2", "g3", "g4"]
    np.testing.assert_allclose(src.library_sizes, [20.0, 10.0, 10.0])
    np.testing.assert_allclose(src.profiles, SIG.to_numpy() / [20.0, 10.0, 10.0] * 1e4)
    ref = src.to_reference([3, 1], ["g4", "g2"])
    np.testing.assert_array_equal(ref.signatures, SIG.to_numpy()[[3, 1]])
    assert ref.cells is None


def test_signature_table_tsv(tmp_path):
    path = tmp_path / "sig.tsv"
    SIG.to_csv(path, sep="\t")
    src = read_reference(path)
    np.testing.assert_array_equal(src.signatures, SIG.to_numpy())


def test_signature_table_library_size_row(tmp_path):
    path = tmp_path / "sig.csv"
    table = pd.concat(
        [SIG, pd.DataFrame([[100.0, 50.0, 400.0]], index=["library_size"], columns=SIG.columns)]
    )
    table.to_csv(path)
    src = read_reference(path)
    assert list(src.var.index) == ["g1", "g2", "g3", "g4"]
    np.testing.assert_allclose(src.signatures.sum(0), [100.0, 50.0, 400.0])
    np.testing.assert_allclose(src.library_sizes, [100.0, 50.0, 400.0])
    expected = SIG.to_numpy() / SIG.to_numpy().sum(0) * [100.0, 50.0, 400.0]
    np.testing.assert_allclose(src.signatures, expected)
    np.testing.assert_allclose(src.signatures[0], [50.0, 5.0, 0.0])


def test_signature_table_non_numeric(tmp_path):
    path = tmp_path / "sig.csv"
    bad = SIG.copy()
    bad["note"] = ["x", "y", "z", "w"]
    bad.to_csv(path)
    with pytest.raises(InputError, match="not numeric") as e:
        read_reference(path)
    assert "note" in str(e.value)


def test_signature_table_duplicated_genes(tmp_path):
    path = tmp_path / "sig.csv"
    dup = SIG.copy()
    dup.index = ["g1", "g2", "g1", "g4"]
    dup.to_csv(path)
    with pytest.raises(InputError, match="duplicated genes") as e:
        read_reference(path)
    assert "g1" in str(e.value)


def test_signature_table_negative(tmp_path):
    path = tmp_path / "sig.csv"
    neg = SIG.copy()
    neg.loc["g2", "B"] = -1.0
    neg.to_csv(path)
    with pytest.raises(InputError, match="negative"):
        read_reference(path)


def test_signature_table_bad_library_size(tmp_path):
    path = tmp_path / "sig.csv"
    table = pd.concat(
        [SIG, pd.DataFrame([[100.0, 0.0, 4.0]], index=["library_size"], columns=SIG.columns)]
    )
    table.to_csv(path)
    with pytest.raises(InputError, match="library_size row must be positive"):
        read_reference(path)


def test_raw_counts_in_raw(tmp_path):
    a = _adata()
    counts = a.X.toarray().astype(float)
    a.raw = a.copy()
    a.X = sp.csr_matrix(np.log1p(counts / counts.sum(1, keepdims=True) * 1e4))
    path = _write_h5ad(tmp_path, a)
    with pytest.warns(SmallTypesWarning):
        src = read_reference(path, "cell_type", min_cells=3)
    _check_source(src)


def test_mtx_numeric_looking_barcodes(tmp_path):
    counts, labels, _ = _cells()
    barcodes = [f"{i:04d}" for i in range(len(labels))]  # "0000", "0001", ...
    folder = tmp_path / "mtx"
    write_mtx(folder, sp.csr_matrix(counts), barcodes, [f"ENS{g}" for g in GENES], GENES)
    pd.DataFrame({"barcode": barcodes, "cell_type": labels}).to_csv(
        tmp_path / "labels.csv", index=False
    )
    with pytest.warns(SmallTypesWarning):
        src = read_reference(folder, labels=tmp_path / "labels.csv", min_cells=3)
    _check_source(src)


def _spatial_slide(tmp_path, n=60):
    """A Visium-like slide .h5ad: counts, x/y obs columns, obsm['spatial'], no labels."""
    rng = np.random.default_rng(0)
    a = ad.AnnData(
        X=sp.csr_matrix(rng.poisson(3.0, size=(n, len(GENES))).astype(np.float32)),
        obs=pd.DataFrame(
            {
                "x": rng.uniform(0, 1000, n),
                "y": rng.uniform(0, 1000, n),
                "in_tissue": np.ones(n, dtype=np.int64),
                "array_row": np.arange(n) // 10,
            },
            index=[f"spot{i}" for i in range(n)],
        ),
        var=pd.DataFrame(index=GENES),
    )
    a.obsm["spatial"] = a.obs[["x", "y"]].to_numpy()
    path = tmp_path / "slide.h5ad"
    a.write_h5ad(path)
    return path


def test_a_spatial_slide_is_refused_as_a_reference(tmp_path):
    path = _spatial_slide(tmp_path)
    with pytest.raises(InputError, match="looks like a spatial slide"):
        read_reference(path)
    with pytest.raises(InputError, match="looks like a spatial slide"):
        read_reference(path, "x")  # the coordinate column a user may pick


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        (np.linspace(0, 1, 60), "decimal numbers"),
        (np.arange(60) * 7, "identifier"),
        (np.arange(300), "different integers"),
        (np.zeros(60, dtype=int), "1 distinct value"),
    ],
)
def test_label_column_problems(values, problem):
    from napari_stlnmf.io.reference import label_column_problem

    assert problem in label_column_problem(pd.Series(values), "score")


def test_label_columns_keep_text_categories_and_cluster_numbers():
    from napari_stlnmf.io.reference import label_column_problem, label_columns

    obs = pd.DataFrame(
        {
            "x": np.linspace(0, 1, 60),
            "leiden": pd.Categorical(np.arange(60) % 4),
            "cluster": np.arange(60) % 7,
            "cell_type": ["a", "b", "c"] * 20,
            "barcode_copy": [f"c{i}" for i in range(60)],
        }
    )
    assert label_columns(obs) == ["cell_type", "cluster", "leiden"]
    assert "coordinates" in label_column_problem(obs["x"], "x")


def test_a_bad_label_key_says_which_columns_can_hold_types(tmp_path):
    a = _adata()
    a.obs["score"] = np.linspace(0, 1, a.n_obs)
    path = tmp_path / "ref.h5ad"
    a.write_h5ad(path)
    with pytest.raises(InputError, match="decimal numbers.*columns that can: cell_type"):
        read_reference(path, "score")
