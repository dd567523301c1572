"""10x Genomics count matrices: HDF5 (v3 and old v2 layouts) and MTX folders.

Both readers return ``(counts, barcodes, var)``: ``counts`` is a scipy CSR matrix
spots x genes with the dtype as stored (int32 for Space Ranger), ``barcodes`` a list of
str and ``var`` a DataFrame indexed by gene symbol (not made unique) with columns
``gene_ids``, ``gene_symbols`` and, where the file has them, ``feature_types`` and
``genome``. Only ``Gene Expression`` features are kept when feature types are known.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse as sp

from .atomic import atomic_write
from .errors import InputError

__all__ = ["read_10x_h5", "read_10x_mtx", "write_10x_h5"]

GENE_EXPRESSION = "Gene Expression"
_MATRIX_KEYS = ("barcodes", "data", "indices", "indptr", "shape")


def _strings(values: np.ndarray) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def _assemble(
    file: Path,
    data: np.ndarray,
    indices: np.ndarray,
    indptr: np.ndarray,
    shape: Sequence[int],
    barcodes: list[str],
    var: pd.DataFrame,
) -> tuple[sp.csr_matrix, list[str], pd.DataFrame]:
    """Check a genes x spots CSC triplet and return it as spots x genes CSR."""
    n_genes, n_spots = (int(s) for s in shape)
    if n_genes == 0 or n_spots == 0:
        raise InputError(f"{file}: empty count matrix ({n_genes} genes x {n_spots} spots)")
    if len(barcodes) != n_spots or len(var) != n_genes:
        raise InputError(
            f"{file}: matrix shape {n_genes} x {n_spots} does not match "
            f"{len(var)} features and {len(barcodes)} barcodes"
        )
    ok = (
        len(indptr) == n_spots + 1
        and indptr[0] == 0
        and indptr[-1] == len(data) == len(indices)
        and np.all(np.diff(indptr) >= 0)
        and (len(indices) == 0 or (indices.min() >= 0 and indices.max() < n_genes))
    )
    if not ok:
        raise InputError(f"{file}: corrupt sparse matrix (indptr/indices inconsistent)")
    data = np.asarray(data)
    if data.dtype.kind not in "iuf":
        raise InputError(f"{file}: counts are not numeric ({data.dtype})")
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        raise InputError(f"{file}: counts have NaN or infinite values")
    if data.size and data.min() < 0:
        raise InputError(f"{file}: counts have negative values; raw counts are needed")
    dup = pd.Index(barcodes)[pd.Index(barcodes).duplicated()].unique()
    if len(dup):
        raise InputError(
            f"{file}: {len(dup)} duplicated barcodes, e.g. {', '.join(map(str, dup[:3]))}"
        )
    counts = sp.csr_matrix((data, indices, indptr), shape=(n_spots, n_genes))
    if "feature_types" in var:
        keep = (var["feature_types"] == GENE_EXPRESSION).to_numpy()
        if not keep.any():
            raise InputError(f"{file}: no 'Gene Expression' features")
        if not keep.all():
            counts = counts[:, np.flatnonzero(keep)].tocsr()
            var = var.loc[keep]
    counts.sort_indices()
    return counts, barcodes, var


def _var(ids: list[str], names: list[str], types: list[str] | None, genome: list[str] | None):
    var = pd.DataFrame({"gene_ids": ids, "gene_symbols": names}, index=pd.Index(names))
    if types is not None:
        var["feature_types"] = types
    if genome is not None:
        var["genome"] = genome
    return var


def _read_group(file: Path, g: h5py.Group, v3: bool):
    missing = [k for k in _MATRIX_KEYS if k not in g]
    if missing:
        raise InputError(f"{file}: group '{g.name}' lacks {', '.join(missing)}")
    barcodes = _strings(g["barcodes"][:])
    if v3:
        if "features" not in g or "id" not in g["features"] or "name" not in g["features"]:
            raise InputError(f"{file}: '{g.name}/features' lacks id/name")
        f = g["features"]
        types = _strings(f["feature_type"][:]) if "feature_type" in f else None
        genome = _strings(f["genome"][:]) if "genome" in f else None
        var = _var(_strings(f["id"][:]), _strings(f["name"][:]), types, genome)
    else:
        ids = _strings(g["genes"][:]) if "genes" in g else None
        names = _strings(g["gene_names"][:]) if "gene_names" in g else ids
        if names is None:
            raise InputError(f"{file}: group '{g.name}' lacks genes/gene_names")
        var = _var(ids or names, names, None, [g.name.strip("/")] * len(names))
    return _assemble(
        file, g["data"][:], g["indices"][:], g["indptr"][:], g["shape"][:], barcodes, var
    )


def read_10x_h5(path: str | os.PathLike) -> tuple[sp.csr_matrix, list[str], pd.DataFrame]:
    """Read a 10x ``filtered_feature_bc_matrix.h5`` (v3 ``/matrix`` or v2 ``/<genome>``).

    Root attributes (``filetype`` etc.) are not required. In the v2 layout several genome
    groups are concatenated along the genes.

    Parameters
    ----------
    path : str or PathLike
        The HDF5 file.

    Returns
    -------
    counts : scipy.sparse.csr_matrix
        Spots x genes counts, dtype as stored.
    barcodes : list of str
        Spot barcodes, in row order.
    var : pandas.DataFrame
        One row per gene: ``gene_ids``, ``gene_symbols`` (also the index), and
        ``feature_types`` / ``genome`` where present.

    Raises
    ------
    InputError
        Missing, truncated or corrupt file, unknown layout, or an empty matrix.
    """
    file = Path(path)
    if not file.is_file():
        raise InputError(f"no such file: {file}")
    try:
        with h5py.File(file, "r") as h:
            if "matrix" in h:
                return _read_group(file, h["matrix"], v3=True)
            groups = [
                g
                for g in h.values()
                if isinstance(g, h5py.Group) and all(k in g for k in _MATRIX_KEYS)
            ]
            if not groups:
                raise InputError(f"{file}: not a 10x matrix (no /matrix or /<genome> group)")
            parts = [_read_group(file, g, v3=False) for g in groups]
    except InputError:
        raise
    except (OSError, KeyError, ValueError, TypeError, IndexError) as e:
        raise InputError(f"{file}: cannot read HDF5 file (truncated or corrupt?): {e}") from None
    if any(p[1] != parts[0][1] for p in parts[1:]):
        raise InputError(f"{file}: genome groups have different barcodes")
    counts = sp.hstack([p[0] for p in parts], format="csr")
    return counts, parts[0][1], pd.concat([p[2] for p in parts])


def _find(folder: Path, *names: str) -> Path | None:
    for name in names:
        for candidate in (folder / f"{name}.gz", folder / name):
            if candidate.is_file():
                return candidate
    return None


def _open_text(file: Path):
    return gzip.open(file, "rb") if file.suffix == ".gz" else open(file, "rb")


def read_10x_mtx(folder: str | os.PathLike) -> tuple[sp.csr_matrix, list[str], pd.DataFrame]:
    """Read a 10x MTX folder such as ``filtered_feature_bc_matrix/``.

    The folder holds ``matrix.mtx``, ``barcodes.tsv`` and ``features.tsv`` (Cell Ranger
    3+) or ``genes.tsv`` (older), each optionally gzipped. Integer counts become int32.

    Parameters
    ----------
    folder : str or PathLike
        The MTX folder.

    Returns
    -------
    counts, barcodes, var
        As :func:`read_10x_h5`.

    Raises
    ------
    InputError
        Missing or corrupt files, inconsistent sizes, or an empty matrix.
    """
    folder = Path(folder)
    mtx = _find(folder, "matrix.mtx")
    bcs = _find(folder, "barcodes.tsv")
    feats = _find(folder, "features.tsv", "genes.tsv")
    if mtx is None or bcs is None or feats is None:
        raise InputError(
            f"{folder}: not a 10x MTX folder (looked for matrix.mtx(.gz), barcodes.tsv(.gz), "
            "features.tsv(.gz) or genes.tsv(.gz))"
        )
    current = mtx
    try:
        with _open_text(mtx) as fh:
            m = sp.csc_matrix(scipy.io.mmread(fh))
        current = bcs
        barcodes = pd.read_csv(bcs, sep="\t", header=None, dtype=str).iloc[:, 0].tolist()
        current = feats
        f = pd.read_csv(feats, sep="\t", header=None, dtype=str)
    except (OSError, ValueError, EOFError, IndexError, zlib.error, pd.errors.ParserError) as e:
        raise InputError(f"{current}: cannot read file (truncated or corrupt?): {e}") from None
    if f.shape[1] < 2:
        f[1] = f[0]
    types = f[2].tolist() if f.shape[1] > 2 else None
    var = _var(f[0].tolist(), f[1].tolist(), types, None)
    int32_max = np.iinfo(np.int32).max
    if m.dtype.kind in "iu" and (m.nnz == 0 or m.data.max() <= int32_max):
        m = m.astype(np.int32)
    return _assemble(mtx, m.data, m.indices, m.indptr, m.shape, barcodes, var)


def write_10x_h5(
    path: str | os.PathLike,
    counts_spots_x_genes,
    barcodes: Sequence[str],
    gene_ids: Sequence[str],
    gene_names: Sequence[str],
    feature_types: Sequence[str] | None = None,
    genome: str = "unknown",
) -> Path:
    """Write counts as a 10x HDF5 v3 file (``/matrix``, genes x spots CSC), atomically.

    Parameters
    ----------
    path : str or PathLike
        Output ``.h5`` file.
    counts_spots_x_genes : array-like or sparse matrix
        Non-negative integer counts, spots x genes; stored as int32.
    barcodes : sequence of str
        One per spot.
    gene_ids, gene_names : sequence of str
        One per gene (e.g. Ensembl IDs and symbols).
    feature_types : sequence of str, optional
        One per gene; defaults to ``"Gene Expression"`` for all.
    genome : str
        Value of ``features/genome``.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    m = sp.csr_matrix(counts_spots_x_genes)
    n_spots, n_genes = m.shape
    if len(barcodes) != n_spots or len(gene_ids) != n_genes or len(gene_names) != n_genes:
        raise ValueError("barcodes / gene_ids / gene_names do not match the matrix shape")
    if m.nnz and (m.data.min() < 0 or not np.all(m.data == np.round(m.data))):
        raise ValueError("counts must be non-negative integers")
    m = m.astype(np.int32)
    m.sum_duplicates()
    m.sort_indices()
    types = [GENE_EXPRESSION] * n_genes if feature_types is None else list(feature_types)

    def b(values) -> np.ndarray:
        return np.array([str(v).encode("utf-8") for v in values], dtype="S")

    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as h:
            h.attrs["filetype"] = "matrix"
            h.attrs["version"] = 2
            g = h.create_group("matrix")
            g.create_dataset("barcodes", data=b(barcodes))
            g.create_dataset("data", data=m.data, compression="gzip", shuffle=True)
            g.create_dataset(
                "indices", data=m.indices.astype(np.int64), compression="gzip", shuffle=True
            )
            g.create_dataset("indptr", data=m.indptr.astype(np.int64))
            g.create_dataset("shape", data=np.array([n_genes, n_spots], dtype=np.int32))
            f = g.create_group("features")
            f.create_dataset("_all_tag_keys", data=b(["genome"]))
            f.create_dataset("id", data=b(gene_ids))
            f.create_dataset("name", data=b(gene_names))
            f.create_dataset("feature_type", data=b(types))
            f.create_dataset("genome", data=b([genome] * n_genes))

    return atomic_write(path, write)
