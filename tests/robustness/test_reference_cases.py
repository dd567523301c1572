"""Broken cell-type references: single-cell .h5ad, MTX + labels, signature tables."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from napari_stlnmf.io.reference import read_reference
from napari_stlnmf.pipeline import prepare
from tests.io.visium_fixtures import write_mtx
from tests.robustness.harness import Case, Cases, check_case

CASES = Cases()


def _ref(ctx) -> ad.AnnData:
    """A copy of the hippocampus reference (510 cells x 307 genes, 17 types x 30 cells)."""
    return ctx.env.sample.reference.copy()


def _write(ctx, a, name="ref.h5ad"):
    path = ctx.tmp / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a.write_h5ad(path)
    return path


def _ref_case(ctx, path, problem, label_key="cell_type", min_cells=5, ok=False, extra=()):
    argv = ["--spatial", ctx.env.slide, "--reference", path, "--method", "plainkl"]
    if label_key is not None:
        argv += ["--label-key", label_key]
    argv += ["--min-cells", min_cells, *extra]

    def api():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            source = read_reference(path, label_key, min_cells=min_cells)
        # the reference must also meet the slide (gene overlap)
        return prepare(ctx.env.slide_adata, source, spatial_name=str(ctx.env.slide))

    return Case(argv=argv, needle=path.name, problem=problem, api=api, ok=ok)


def _dense(a) -> np.ndarray:
    return a.X.toarray() if sp.issparse(a.X) else np.asarray(a.X)


# --- single-cell .h5ad ----------------------------------------------------------------
@CASES("ref-truncated", n=3)
def _(ctx):
    path = _write(ctx, _ref(ctx))
    data = path.read_bytes()
    path.write_bytes(data[: int(ctx.rng.integers(100, len(data) - 100))])
    return _ref_case(ctx, path, r"not a readable \.h5ad")


@CASES("ref-random-bytes")
def _(ctx):
    path = ctx.tmp / "ref.h5ad"
    path.write_bytes(ctx.rng.bytes(3000))
    return _ref_case(ctx, path, r"not a readable \.h5ad")


@CASES("ref-wrong-label-key", n=2)
def _(ctx):
    path = _write(ctx, _ref(ctx))
    key = ["celltype_typo", "CELL_TYPE"][ctx.k]
    case = _ref_case(ctx, path, r"no column .*cell_type", label_key=key)
    case.needle = [path.name, key]
    return case


@CASES("ref-no-label-column-guessable")
def _(ctx):
    a = _ref(ctx)
    a.obs = a.obs.rename(columns={"cell_type": "ct"})
    return _ref_case(ctx, _write(ctx, a), r"--label-key", label_key=None)


@CASES("ref-one-cell-type")
def _(ctx):
    a = _ref(ctx)
    a.obs["cell_type"] = str(ctx.rng.choice(a.obs["cell_type"].unique()))
    return _ref_case(ctx, _write(ctx, a), r"at least 2")


@CASES("ref-min-cells-drops-every-type")
def _(ctx):
    return _ref_case(ctx, _write(ctx, _ref(ctx)), r"at least 2", min_cells=31)


@CASES("ref-min-cells-leaves-one-type")
def _(ctx):
    a = _ref(ctx)
    labels = a.obs["cell_type"].astype(str).to_numpy().copy()
    others = np.flatnonzero(labels != "CA1")
    labels[ctx.rng.choice(others, size=8, replace=False)] = "CA1"  # CA1: 38 cells
    a.obs["cell_type"] = labels
    return _ref_case(ctx, _write(ctx, a), r"1 cell type", min_cells=31)


@CASES("ref-all-labels-missing")
def _(ctx):
    a = _ref(ctx)
    a.obs["cell_type"] = pd.Categorical([np.nan] * a.n_obs, categories=["CA1"])
    return _ref_case(ctx, _write(ctx, a), r"at least 2")


@CASES("ref-log-normalised", n=2)
def _(ctx):
    a = _ref(ctx)
    x = _dense(a).astype(np.float64)
    norm = x / np.maximum(x.sum(1, keepdims=True), 1) * 1e4
    a.X = sp.csr_matrix(np.log1p(norm)) if ctx.k == 0 else np.log1p(norm).astype(np.float32)
    return _ref_case(ctx, _write(ctx, a), r"log-normalised")


@CASES("ref-negative-values")
def _(ctx):
    a = _ref(ctx)
    x = _dense(a).astype(np.float64)
    x[ctx.rng.integers(a.n_obs), ctx.rng.integers(a.n_vars)] = -float(ctx.rng.integers(1, 9))
    a.X = sp.csr_matrix(x)
    return _ref_case(ctx, _write(ctx, a), r"negative")


@CASES("ref-nan-values")
def _(ctx):
    a = _ref(ctx)
    x = _dense(a).astype(np.float64)
    x[ctx.rng.integers(a.n_obs), ctx.rng.integers(a.n_vars)] = np.nan
    a.X = sp.csr_matrix(x)
    return _ref_case(ctx, _write(ctx, a), r"NaN")


@CASES("ref-zero-cells")
def _(ctx):
    return _ref_case(ctx, _write(ctx, _ref(ctx)[:0].copy()), r"empty|at least 2")


@CASES("ref-other-gene-names", n=2)
def _(ctx):
    """No gene shared with the slide: made-up symbols, or human Ensembl IDs."""
    a = _ref(ctx)
    if ctx.k == 0:
        a.var_names = [f"XG{int(v):06d}" for v in ctx.rng.permutation(10**6)[: a.n_vars]]
    else:
        a.var_names = [f"ENSG{int(v):011d}" for v in ctx.rng.permutation(10**6)[: a.n_vars]]
    case = _ref_case(ctx, _write(ctx, a), r"genes shared")
    return case


@CASES("ref-upper-case-symbols-still-match")
def _(ctx):
    """Symbols in another case (human-style SNAP25 vs mouse Snap25) match
    case-insensitively: this run must succeed."""
    a = _ref(ctx)
    a.var_names = [g.upper() for g in a.var_names]
    return _ref_case(ctx, _write(ctx, a), "", ok=True)


@CASES("ref-missing-file")
def _(ctx):
    return _ref_case(ctx, ctx.tmp / "absent.h5ad", r"not found")


@CASES("ref-unknown-format")
def _(ctx):
    path = ctx.tmp / "ref.loom"
    path.write_bytes(ctx.rng.bytes(200))
    return _ref_case(ctx, path, r"unknown format")


# --- MTX folder + labels --------------------------------------------------------------
def _mtx(ctx):
    a = _ref(ctx)
    folder = ctx.tmp / "ref_mtx"
    genes = list(a.var_names)
    write_mtx(folder, sp.csr_matrix(a.X), list(a.obs_names), genes, genes)
    labels = ctx.tmp / "labels.csv"
    a.obs[["cell_type"]].rename_axis("barcode").to_csv(labels)
    return a, folder, labels


@CASES("ref-mtx-without-labels")
def _(ctx):
    _, folder, _ = _mtx(ctx)
    case = _ref_case(ctx, folder, r"--labels")
    case.api = lambda: read_reference(folder, "cell_type")
    return case


@CASES("ref-mtx-labels-missing-cells")
def _(ctx):
    a, folder, labels = _mtx(ctx)
    table = pd.read_csv(labels)
    drop = ctx.rng.choice(len(table), size=int(ctx.rng.integers(1, 20)), replace=False)
    table.drop(index=drop).to_csv(labels, index=False)
    case = _ref_case(ctx, folder, r"no row for", extra=["--labels", labels])
    case.needle = labels.name
    case.api = lambda: read_reference(folder, "cell_type", labels=labels)
    return case


@CASES("ref-mtx-labels-file-missing")
def _(ctx):
    _, folder, labels = _mtx(ctx)
    labels.unlink()
    case = _ref_case(ctx, folder, r"not found", extra=["--labels", labels])
    case.needle = labels.name
    case.api = lambda: read_reference(folder, "cell_type", labels=labels)
    return case


@CASES("ref-mtx-truncated")
def _(ctx):
    _, folder, labels = _mtx(ctx)
    f = folder / "matrix.mtx.gz"
    data = f.read_bytes()
    f.write_bytes(data[: int(ctx.rng.integers(len(data) // 5, len(data) - 10))])
    case = _ref_case(ctx, folder, r"truncated|corrupt", extra=["--labels", labels])
    case.needle = "matrix.mtx.gz"
    case.api = lambda: read_reference(folder, "cell_type", labels=labels)
    return case


# --- signature tables -----------------------------------------------------------------
def _signatures(ctx) -> pd.DataFrame:
    """Mean counts per cell of each type (genes x types) from the hippocampus reference."""
    a = _ref(ctx)
    x = _dense(a).astype(np.float64)
    labels = a.obs["cell_type"].astype(str).to_numpy()
    types = sorted(set(labels))
    sig = np.stack([x[labels == t].mean(0) for t in types], axis=1)
    return pd.DataFrame(sig, index=list(a.var_names), columns=types)


def _sig_case(ctx, table: pd.DataFrame, problem, name="signatures.csv", raw=None):
    path = ctx.tmp / name
    if raw is None:
        table.to_csv(path, sep="\t" if name.endswith(".tsv") else ",")
    else:
        path.write_bytes(raw)
    case = _ref_case(ctx, path, problem, label_key=None)
    case.api = lambda: read_reference(path)
    return case


@CASES("sig-non-numeric-column", n=2)
def _(ctx):
    t = _signatures(ctx).astype(object)
    col = int(ctx.rng.integers(t.shape[1]))
    t.iloc[int(ctx.rng.integers(t.shape[0])), col] = ["n/a", "high"][ctx.k]
    return _sig_case(ctx, t, [r"NaN", r"not numeric"][ctx.k])  # pandas reads n/a as NaN


@CASES("sig-duplicated-genes")
def _(ctx):
    t = _signatures(ctx)
    genes = list(t.index)
    i, j = ctx.rng.choice(len(genes), size=2, replace=False)
    genes[j] = genes[i]
    t.index = genes
    return _sig_case(ctx, t, r"duplicated genes")


@CASES("sig-all-zero-type")
def _(ctx):
    t = _signatures(ctx)
    t.iloc[:, int(ctx.rng.integers(t.shape[1]))] = 0.0
    return _sig_case(ctx, t, r"all-zero")


@CASES("sig-negative-or-nan", n=2)
def _(ctx):
    t = _signatures(ctx)
    t.iloc[int(ctx.rng.integers(t.shape[0])), int(ctx.rng.integers(t.shape[1]))] = [
        -1.0,
        np.nan,
    ][ctx.k]
    return _sig_case(ctx, t, r"NaN, infinite or negative")


@CASES("sig-one-type")
def _(ctx):
    t = _signatures(ctx)
    return _sig_case(ctx, t.iloc[:, :1], r">= 2 cell types")


@CASES("sig-bad-library-size-row")
def _(ctx):
    t = _signatures(ctx)
    lib = pd.DataFrame([np.r_[-5.0, np.ones(t.shape[1] - 1)]], index=["library_size"])
    lib.columns = t.columns
    return _sig_case(ctx, pd.concat([t, lib]), r"library_size")


@CASES("sig-empty-file")
def _(ctx):
    return _sig_case(ctx, None, r"not a readable table", raw=b"")


@CASES("sig-ragged")
def _(ctx):
    t = _signatures(ctx)
    text = t.to_csv().splitlines()
    i = int(ctx.rng.integers(2, len(text)))
    text[i] += ",1,2,3"
    return _sig_case(ctx, None, r"not a readable table", raw=("\n".join(text) + "\n").encode())


@CASES("sig-other-gene-names")
def _(ctx):
    t = _signatures(ctx)
    t.index = [f"g{i}" for i in ctx.rng.permutation(len(t))]
    case = _sig_case(ctx, t, r"genes shared")
    path = ctx.tmp / "signatures.csv"
    case.api = lambda: prepare(ctx.env.slide_adata, read_reference(path))
    return case


@pytest.mark.parametrize("case_id", CASES.ids)
def test_bad_reference(case_id, env, tmp_path, capsys, monkeypatch):
    check_case(CASES.build(case_id, tmp_path, env, monkeypatch), tmp_path, capsys)


def test_control_signature_table_runs(env, tmp_path, capsys, monkeypatch):
    """The unbroken signature table works end to end (the cases fail for their reason)."""
    from tests.robustness.harness import Ctx

    ctx = Ctx("control", 0, np.random.default_rng(0), tmp_path, env, monkeypatch)
    case = _sig_case(ctx, _signatures(ctx), "", name="sig.tsv")
    case.ok = True
    check_case(case, tmp_path, capsys)


def test_control_mtx_reference_reads(env, tmp_path, monkeypatch):
    from tests.robustness.harness import Ctx

    ctx = Ctx("control", 0, np.random.default_rng(0), tmp_path, env, monkeypatch)
    _, folder, labels = _mtx(ctx)
    assert len(read_reference(folder, "cell_type", labels=labels).cell_types) == 17
