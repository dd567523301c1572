"""Synthetic Space Ranger ``outs/`` folders in the real on-disk layouts, for reader tests.

The full-resolution frame is ``FULLRES_W`` x ``FULLRES_H`` px. In-tissue spots sit on a
4 x 3 grid (pitch 150 px, x != y everywhere) and the first few carry a distinct colour
dot drawn at ``round(pxl * scale)`` in each image, so a test can check that spot ``i``
of the reader's output lands on its colour.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse as sp
from PIL import Image

from napari_stlnmf.io.tenx import write_10x_h5

FULLRES_W, FULLRES_H = 1200, 1000
HIRES, LOWRES = 0.25, 0.08
SPOT_DIAMETER = 90.0
BACKGROUND = (186, 186, 186)
COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255)]
GENE_IDS = ["ENSG01", "ENSG02", "ENSG03", "ENSG04", "ENSG05"]
GENE_NAMES = ["Actb", "Gapdh", "Actb", "Sox2", "Mbp"]  # one duplicated symbol
POSITION_HEADER = [
    "barcode",
    "in_tissue",
    "array_row",
    "array_col",
    "pxl_row_in_fullres",
    "pxl_col_in_fullres",
]


def _barcode(i: int) -> str:
    bases = "ACGT"
    return "".join(bases[(i >> (2 * k)) & 3] for k in range(16)) + "-1"


def positions_table(n_out: int = 4) -> pd.DataFrame:
    """All spots (12 in tissue on a grid, ``n_out`` off tissue along the top edge)."""
    rows = []
    for i in range(3):
        for j in range(4):
            rows.append((1, 2 * i + 1, 2 * j + 3, 250 + 150 * i, 200 + 150 * j + 25 * i))
    for k in range(n_out):
        rows.append((0, 0, 2 * k, 60, 100 + 200 * k))
    df = pd.DataFrame(rows, columns=POSITION_HEADER[1:])
    df.insert(0, "barcode", [_barcode(i + 7) for i in range(len(df))])
    return df


def draw(size_wh: tuple[int, int], pos: pd.DataFrame, dots: dict, scale: float, r: int):
    """uint8 RGB image with a filled square of side 2r+1 at each dotted spot's centre."""
    img = np.empty((size_wh[1], size_wh[0], 3), np.uint8)
    img[:] = BACKGROUND
    p = pos.set_index("barcode")
    for bc, colour in dots.items():
        x = round(p.at[bc, "pxl_col_in_fullres"] * scale)
        y = round(p.at[bc, "pxl_row_in_fullres"] * scale)
        img[max(0, y - r) : y + r + 1, max(0, x - r) : x + r + 1] = colour
    return img


def write_positions(spatial: Path, pos: pd.DataFrame, kind: str = "csv") -> Path:
    """``kind``: "csv" (headered, Space Ranger 2+) or "list" (headerless, Space Ranger 1)."""
    shuffled = pos.sample(frac=1.0, random_state=1)  # file order != matrix order
    if kind == "csv":
        file = spatial / "tissue_positions.csv"
        shuffled.to_csv(file, index=False)
    else:
        file = spatial / "tissue_positions_list.csv"
        shuffled.to_csv(file, index=False, header=False)
    return file


def write_mtx(folder: Path, counts: sp.csr_matrix, barcodes, gene_ids, gene_names) -> None:
    """A gzipped Cell Ranger 3+ ``filtered_feature_bc_matrix/`` folder."""
    folder.mkdir(parents=True)
    with gzip.open(folder / "matrix.mtx.gz", "wb") as fh:
        scipy.io.mmwrite(fh, sp.coo_matrix(counts.T), field="integer")
    with gzip.open(folder / "barcodes.tsv.gz", "wt") as fh:
        fh.write("".join(f"{b}\n" for b in barcodes))
    with gzip.open(folder / "features.tsv.gz", "wt") as fh:
        fh.write("".join(f"{i}\t{n}\tGene Expression\n" for i, n in zip(gene_ids, gene_names)))


def write_h5_v2(file: Path, counts: sp.csr_matrix, barcodes, gene_ids, gene_names) -> None:
    """The old Cell Ranger 2 layout: ``/<genome>/{barcodes,data,...,genes,gene_names}``."""
    import h5py

    m = counts.tocsr()
    with h5py.File(file, "w") as h:
        g = h.create_group("mm10")
        g["barcodes"] = np.array(barcodes, dtype="S")
        g["data"] = m.data.astype(np.int32)
        g["indices"] = m.indices.astype(np.int64)
        g["indptr"] = m.indptr.astype(np.int64)
        g["shape"] = np.array([m.shape[1], m.shape[0]], dtype=np.int32)
        g["genes"] = np.array(gene_ids, dtype="S")
        g["gene_names"] = np.array(gene_names, dtype="S")


def make_outs(
    root: Path,
    *,
    sample: str = "sampleA",
    matrix: str = "h5",
    positions: str = "csv",
    images: tuple[str, ...] = ("hires", "lowres"),
    fullres: bool = False,
    extra_out_of_tissue: int = 1,
) -> SimpleNamespace:
    """Write ``root/sample/outs`` and return what a reader should find there.

    ``matrix``: "h5" (v3, with one extra "Antibody Capture" feature that readers must
    drop), "h5v2", "mtx" or "none"; ``positions``: "csv", "list" or "none".
    The matrix holds all in-tissue spots, then ``extra_out_of_tissue`` off-tissue ones.
    """
    outs = root / sample / "outs"
    spatial = outs / "spatial"
    spatial.mkdir(parents=True)
    pos = positions_table()
    inside = pos.loc[pos.in_tissue == 1, "barcode"].tolist()
    outside = pos.loc[pos.in_tissue == 0, "barcode"].tolist()[:extra_out_of_tissue]
    barcodes = inside[::-1] + outside  # matrix order differs from the positions file
    rng = np.random.default_rng(0)
    counts = sp.csr_matrix(rng.integers(0, 6, size=(len(barcodes), len(GENE_IDS))), dtype=np.int32)

    if matrix == "h5":
        extra = rng.integers(0, 50, size=(len(barcodes), 1))
        write_10x_h5(
            outs / "filtered_feature_bc_matrix.h5",
            sp.hstack([counts, sp.csr_matrix(extra)]),
            barcodes,
            [*GENE_IDS, "CD3"],
            [*GENE_NAMES, "CD3_TotalSeqB"],
            feature_types=["Gene Expression"] * len(GENE_IDS) + ["Antibody Capture"],
            genome="GRCm38",
        )
    elif matrix == "h5v2":
        write_h5_v2(outs / "filtered_feature_bc_matrix.h5", counts, barcodes, GENE_IDS, GENE_NAMES)
    elif matrix == "mtx":
        write_mtx(outs / "filtered_feature_bc_matrix", counts, barcodes, GENE_IDS, GENE_NAMES)

    if positions != "none":
        write_positions(spatial, pos, positions)
    scalefactors = {
        "tissue_hires_scalef": HIRES,
        "tissue_lowres_scalef": LOWRES,
        "spot_diameter_fullres": SPOT_DIAMETER,
        "fiducial_diameter_fullres": 135.0,
    }
    (spatial / "scalefactors_json.json").write_text(json.dumps(scalefactors))

    dots = dict(zip(inside[::3], COLOURS))
    size = {"hires": HIRES, "lowres": LOWRES}
    for key in images:
        s = size[key]
        wh = (round(FULLRES_W * s), round(FULLRES_H * s))
        img = draw(wh, pos, dots, s, r=4 if key == "hires" else 2)
        Image.fromarray(img).save(spatial / f"tissue_{key}_image.png")
    tif = None
    if fullres:
        import tifffile

        tif = outs.parent / "image_fullres.tif"
        tifffile.imwrite(tif, draw((FULLRES_W, FULLRES_H), pos, dots, 1.0, r=10))

    p = pos.set_index("barcode").loc[barcodes]
    return SimpleNamespace(
        outs=outs,
        spatial=spatial,
        positions=pos,
        barcodes=barcodes,
        in_tissue=(p.in_tissue == 1).to_numpy(),
        counts=counts.toarray(),
        xy=p[["pxl_col_in_fullres", "pxl_row_in_fullres"]].to_numpy(float),
        dots=dots,
        scalefactors=scalefactors,
        fullres=tif,
    )
