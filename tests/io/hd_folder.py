"""Small Space Ranger Visium HD ``outs/`` folders in the real on-disk layout, for tests.

A ``N x N`` grid of 2 µm bins (``MPP`` µm per full-resolution pixel, so a 2 µm bin is
``2 / MPP`` px wide) holds the counts; the 8 and 16 µm folders are built from it the way
Space Ranger nests its bins (bin ``(R, C)`` of size ``4s`` holds the 2 µm bins with
``row // (2s) == R`` and ``col // (2s) == C``): counts are the sums of the in-tissue 2 µm
bins, centres the mean of all 2 µm centres, in tissue when any 2 µm bin is. Every matrix
also carries ``extra_out_of_tissue`` off-tissue bins (with counts) that readers must drop.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp
from PIL import Image

from napari_stlnmf.io.tenx import write_10x_h5

N = 40  # 2 um bins per side
MPP = 0.5  # microns per full-resolution pixel: a 2 um bin is 4 px
X0, Y0 = 100.0, 60.0  # full-resolution pixel of the grid's top-left corner
FULLRES_W, FULLRES_H = 300, 260
HIRES, LOWRES = 0.5, 0.1
GENE_IDS = [f"ENSG{i:02d}" for i in range(6)]
GENE_NAMES = ["Actb", "Gapdh", "Actb", "Sox2", "Mbp", "Gfap"]  # one duplicated symbol
COLUMNS = [
    "barcode",
    "in_tissue",
    "array_row",
    "array_col",
    "pxl_row_in_fullres",
    "pxl_col_in_fullres",
]


def barcode(size_um: int, row, col) -> list[str]:
    """``s_008um_00003_00012-1`` for each (row, col)."""
    return [f"s_{size_um:03d}um_{r:05d}_{c:05d}-1" for r, c in zip(row, col)]


def tissue_2um(n: int = N) -> np.ndarray:
    """(n, n) bool: a disc of tissue, off centre so that rows and columns differ."""
    r, c = np.mgrid[0:n, 0:n]
    return (r - 0.45 * n) ** 2 + (c - 0.55 * n) ** 2 < (0.36 * n) ** 2


def _grid(size_um: int, counts_2um: np.ndarray, tissue: np.ndarray) -> SimpleNamespace:
    """All bins of ``size_um`` (positions of every bin, counts of the in-tissue ones)."""
    n = tissue.shape[0]
    k = size_um // 2
    m = -(-n // k)  # bins per side, the last ones partial
    r2, c2 = (a.ravel() for a in np.mgrid[0:n, 0:n])
    block = (r2 // k) * m + c2 // k
    px_col = X0 + (2.0 / MPP) * (c2 + 0.5)
    px_row = Y0 + (2.0 / MPP) * (r2 + 0.5)
    members = np.bincount(block, minlength=m * m)
    in_tissue = np.bincount(block, weights=tissue.ravel(), minlength=m * m) > 0
    g = sp.csr_matrix(
        (np.ones(n * n), (block, np.arange(n * n))), shape=(m * m, n * n), dtype=np.int64
    )
    inside = sp.diags(tissue.ravel().astype(np.int64), dtype=np.int64)
    counts = (g @ inside @ sp.csr_matrix(counts_2um)).toarray()
    rows, cols = np.divmod(np.arange(m * m), m)
    positions = pd.DataFrame(
        {
            "barcode": barcode(size_um, rows, cols),
            "in_tissue": in_tissue.astype(np.int32),
            "array_row": rows.astype(np.int32),
            "array_col": cols.astype(np.int32),
            "pxl_row_in_fullres": np.bincount(block, weights=px_row) / members,
            "pxl_col_in_fullres": np.bincount(block, weights=px_col) / members,
        }
    )
    return SimpleNamespace(size=size_um, positions=positions, counts=counts)


def scalefactors(size_um: int) -> dict:
    return {
        "spot_diameter_fullres": size_um / MPP,
        "bin_size_um": float(size_um),
        "microns_per_pixel": MPP,
        "tissue_hires_scalef": HIRES,
        "tissue_lowres_scalef": LOWRES,
        "fiducial_diameter_fullres": 300.0,
        "regist_target_img_scalef": HIRES,
    }


def write_image(file: Path, scale: float) -> None:
    """A tiny H&E-ish image of the full-resolution frame at ``scale``."""
    w, h = round(FULLRES_W * scale), round(FULLRES_H * scale)
    img = np.empty((h, w, 3), np.uint8)
    img[:] = (230, 210, 225)
    y0, x0 = round(Y0 * scale), round(X0 * scale)
    img[y0 : y0 + round(N * 4 * scale), x0 : x0 + round(N * 4 * scale)] = (180, 90, 160)
    Image.fromarray(img).save(file)


def write_positions(file: Path, positions: pd.DataFrame) -> None:
    shuffled = positions.sample(frac=1.0, random_state=3)  # file order != grid order
    pq.write_table(pa.Table.from_pandas(shuffled, preserve_index=False), file)


def make_hd_outs(
    root: Path,
    *,
    sample: str = "hdsample",
    sizes: tuple[int, ...] = (2, 8, 16),
    n: int = N,
    counts_2um: np.ndarray | None = None,
    gene_ids: list[str] | None = None,
    gene_names: list[str] | None = None,
    extra_out_of_tissue: int = 2,
    images_in: str = "outs",
    segmented: bool = False,
    seed: int = 0,
) -> SimpleNamespace:
    """Write ``root/sample/outs`` of a Visium HD run and return what a reader should find.

    ``counts_2um`` (n*n, genes), row-major over the 2 µm grid, defaults to random counts;
    ``images_in``: "outs" (``outs/spatial/`` only) or "bins" (each bin folder's
    ``spatial/`` too); ``segmented`` adds ``segmented_outputs/`` (see :func:`write_cells`).
    """
    gene_ids = gene_ids or GENE_IDS
    gene_names = gene_names or GENE_NAMES
    rng = np.random.default_rng(seed)
    if counts_2um is None:
        counts_2um = rng.poisson(0.6, size=(n * n, len(gene_ids)))
    tissue = tissue_2um(n)
    outs = root / sample / "outs"
    (outs / "spatial").mkdir(parents=True)
    for key, scale in (("hires", HIRES), ("lowres", LOWRES)):
        write_image(outs / "spatial" / f"tissue_{key}_image.png", scale)
    # CytAssist image: in its own frame, never loaded.
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(outs / "spatial" / "cytassist_image.tiff")
    grids = {}
    for size in sizes:
        g = _grid(size, counts_2um, tissue)
        folder = outs / "binned_outputs" / f"square_{size:03d}um"
        (folder / "spatial").mkdir(parents=True)
        write_positions(folder / "spatial" / "tissue_positions.parquet", g.positions)
        (folder / "spatial" / "scalefactors_json.json").write_text(json.dumps(scalefactors(size)))
        if images_in == "bins":
            for key, scale in (("hires", HIRES), ("lowres", LOWRES)):
                write_image(folder / "spatial" / f"tissue_{key}_image.png", scale)
        inside = np.flatnonzero(g.positions.in_tissue == 1)
        outside = np.flatnonzero(g.positions.in_tissue == 0)[:extra_out_of_tissue]
        matrix_rows = np.concatenate([inside[::-1], outside])  # matrix order != file order
        counts = g.counts[matrix_rows].copy()
        counts[len(inside) :] = rng.integers(1, 9, size=(len(outside), len(gene_ids)))
        write_10x_h5(
            folder / "filtered_feature_bc_matrix.h5",
            counts,
            g.positions.barcode.to_numpy()[matrix_rows],
            gene_ids,
            gene_names,
            genome="GRCm39",
        )
        g.in_tissue_rows = inside[::-1]  # what a reader keeps, in matrix order
        g.folder = folder
        grids[size] = g
    result = SimpleNamespace(
        outs=outs, sample=sample, grids=grids, counts_2um=counts_2um, tissue=tissue, n=n
    )
    if segmented:
        result.cells = write_cells(outs, gene_ids, gene_names, rng)
    return result


def write_cells(outs: Path, gene_ids, gene_names, rng) -> SimpleNamespace:
    """``segmented_outputs/``: five cells (rectangles, a triangle, an L-shaped MultiPolygon)
    with known centroids and areas, plus one polygon whose cell the matrix filtered out."""
    seg = outs / "segmented_outputs"
    (seg / "spatial").mkdir(parents=True)
    (seg / "spatial" / "scalefactors_json.json").write_text(json.dumps(scalefactors(2)))

    def rect(x, y, w, h):
        return [[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]

    shapes = {
        7: ("Polygon", [rect(120, 80, 10, 6)], (125.0, 83.0), 60.0),
        3: ("Polygon", [rect(200, 150, 8, 8)], (204.0, 154.0), 64.0),
        12: ("Polygon", [[[150, 100], [162, 100], [150, 112], [150, 100]]], (154.0, 104.0), 72.0),
        5: (
            "MultiPolygon",
            [[rect(180, 90, 4, 4)], [rect(190, 90, 4, 12)]],
            ((182 * 16 + 192 * 48) / 64, (92 * 16 + 96 * 48) / 64),
            64.0,
        ),
        9: ("Polygon", [rect(140, 170, 6, 5)[::-1]], (143.0, 172.5), 30.0),  # clockwise
        99: ("Polygon", [rect(110, 200, 5, 5)], (112.5, 202.5), 25.0),  # not in the matrix
    }
    features = [
        {
            "type": "Feature",
            "geometry": {"type": kind, "coordinates": coords},
            "properties": {"cell_id": cid},
        }
        for cid, (kind, coords, _, _) in shapes.items()
    ]
    (seg / "cell_segmentations.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": features})
    )
    ids = [9, 3, 12, 7, 5]  # matrix order != file order
    barcodes = [f"cellid_{i:09d}-1" for i in ids]
    counts = rng.integers(0, 20, size=(len(ids), len(gene_ids)))
    write_10x_h5(seg / "filtered_feature_cell_matrix.h5", counts, barcodes, gene_ids, gene_names)
    return SimpleNamespace(
        folder=seg,
        ids=ids,
        barcodes=barcodes,
        counts=counts,
        xy=np.array([shapes[i][2] for i in ids]),
        area=np.array([shapes[i][3] for i in ids]),
    )


def write_feature_slice(outs: Path, to_spot: np.ndarray, to_microscope: np.ndarray) -> Path:
    """``outs/feature_slice.h5`` holding only what readers take from it: the root attribute
    ``metadata_json`` with Space Ranger's ``transform_matrices`` (3 x 3 nested lists)."""
    import h5py

    meta = {
        "sample_id": "hdsample",
        # what spatialdata-io's reader checks: the layout's file format and transform
        "hd_layout_json": json.dumps(
            {"file_format": "1.0", "transform": np.eye(3).ravel().tolist()}
        ),
        "transform_matrices": {
            "cytassist_colrow_to_spot_colrow": np.asarray(to_spot).tolist(),
            "spot_colrow_to_cytassist_colrow": np.linalg.inv(to_spot).tolist(),
            "spot_colrow_to_microscope_colrow": np.asarray(to_microscope).tolist(),
            "microscope_colrow_to_spot_colrow": np.linalg.inv(to_microscope).tolist(),
        },
    }
    path = outs / "feature_slice.h5"
    with h5py.File(path, "w") as f:
        f.attrs["metadata_json"] = json.dumps(meta)
    return path
