"""Build the two sample data sets shipped in ``src/napari_stlnmf/samples/``.

usage: .venv/bin/python scripts/make_samples.py [--data /work/shared/data]

Deterministic (one seeded ``numpy.random.Generator``, ``SEED`` below); needs numpy, scipy,
pandas, anndata, h5py and Pillow. Running it twice gives byte-identical files.

``hippocampus/``
    The real spacexr (RCTD) toy Visium hippocampus: ``spots.h5ad`` (313 spots x 276 genes)
    and its real DropViz scRNA-seq ``reference.h5ad`` (510 cells x 307 genes, 17 types),
    re-saved with gzip level 9 (same content, about 10 % smaller). No image, no ground truth.

``mouse_brain/``
    The real 10x CytAssist FFPE mouse-brain ``spatial/`` folder (H&E hires + lowres,
    ``tissue_positions.csv``, ``scalefactors_json.json``) copied byte for byte into
    ``outs/spatial/``, plus ``outs/filtered_feature_bc_matrix.h5`` for its 2,310 in-tissue
    spots whose counts are composed from real hippocampus reference cells placed by an
    anatomical drawing of this H&E:

    1. Split: each type's 30 reference cells are permuted (seeded); the first 15 form the
       *spot pool* (names in ``spot_pool_cells.txt``), the other 15 the shipped
       ``reference.h5ad`` (CSR int32 counts, ``obs["cell_type"]``). The two are disjoint.
    2. Anatomy: ``ANATOMY_DRAWING`` below is a hand drawing of this coronal hemisection in
       hires-image pixels (polygons, and thick polylines for the CA1, CA2/CA3 and dentate
       cell bands, traced on the visible haematoxylin-rich bands), painted in order with
       Pillow (later shapes over earlier ones) and clipped to the tissue (hires grey < 225,
       binary opening x2, components >= 5,000 px kept, holes < 3,000 px filled). The
       result, ``anatomy_labels.png`` (uint8, hires grid, 0 = glass or ventricle lumen),
       and ``region_names.csv`` (region, name, structures, composition) are shipped.
       ``REGIONS`` below gives the 11 regions, numbered 1..11.
    3. Region compositions: ``REGIONS`` gives each region's cell-type composition (percent
       of cells) from textbook anatomy, using only the reference types that belong there;
       DropViz types stand in where the reference has no better one (``Entorihinal``, the
       DropViz entorhinal excitatory neurons, for cortical and basolateral-amygdala
       excitatory neurons; ``Neuron.Slc17a6``, VGLUT2 excitatory neurons, for thalamic and
       hypothalamic excitatory neurons; ``Interneuron``, GABAergic, for striatal projection
       neurons and hypothalamic GABAergic neurons). The numbers are the recipe's choices,
       not measurements.
    4. Per spot: the label fractions inside the spot disk (radius
       ``spot_diameter_fullres * tissue_hires_scalef / 2`` hires px around
       ``(pxl_col, pxl_row) * tissue_hires_scalef``; unlabelled pixels ignored; a disk with
       no labelled pixel takes the nearest label), weighted by each region's relative cell
       density (3 for the packed CA1/CA3/dentate cell layers, 1 elsewhere), mix the region
       compositions, so a spot over a thin band also sees its neighbours. The mixture is
       multiplied by ``exp(f_t)`` and renormalised, where ``f_t`` is one smooth Gaussian
       random field per type (random Fourier features of a squared-exponential kernel,
       length scale 4 spot pitches, 2,000 features, standardised over the spots to mean 0
       and sd 0.4); types absent from a spot's regions stay absent. The spot's region
       (``regions.csv``) is the label under its centre (nearest label if unlabelled).
    5. Cells per spot ``n = 1 + NegBin(r=2, mean 5)`` (mean 6, over-dispersed); cells per
       type ``~ Multinomial(n, p_spot)``; each cell drawn with replacement from its type's
       spot pool.
    6. Counts: expected = (sum of the chosen cells' raw counts) x per-gene platform effect
       (log-normal, sd 0.3, normalised to geometric mean 1) x per-spot capture efficiency
       (log-normal, sd 0.2); counts = Poisson(expected) as int32. Depth is left at the
       summed-cell depth. All 307 reference genes are kept; gene id = gene name = symbol
       (the source has no Ensembl IDs).
    7. Ground truth: ``truth.csv`` (barcode, region, n_cells, then the number of cells of
       each type; fractions = counts / n_cells) and ``regions.csv`` (barcode, region).
    ``mouse_brain/SOURCE.md`` is written with the resulting numbers.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
from PIL import Image, ImageDraw
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from napari_stlnmf.io.tenx import write_10x_h5  # noqa: E402

SEED = 20240611
POOL_PER_TYPE = 15
GRF_LENGTH_PITCHES = 4.0
GRF_SD = 0.4
GRF_FEATURES = 2000
NB_R, NB_MEAN = 2.0, 5.0  # extra cells per spot beyond the first
PLATFORM_SD = 0.3
CAPTURE_SD = 0.2
TISSUE_GREY = 225  # hires grey level below which a pixel is tissue
LABELS_FILE = "anatomy_labels.png"
NAMES_FILE = "region_names.csv"

# fmt: off
# Anatomical regions of the coronal hemisection (dorsal hippocampus level; midline on the
# right, dorsal up). Columns: name, structures covered, relative cell density (weights the
# label fractions inside a spot), composition in percent of cells (each row sums to 100).
# Abbreviations: Endo = Endothelial_Stalk / Endothelial_Tip, Micro = Microglia_Macrophages.
# Where the boundary is uncertain the structures column says "approximate".
REGIONS: list[tuple[str, str, float, dict[str, int]]] = [
    # 1: six-layered cortex, ~55 % neurons, ~80 % of them excitatory
    ("cortex", "isocortex (all layers; retrosplenial medially, lateral/piriform ventrally)", 1.0,
     {"Entorihinal": 45, "Interneuron": 12, "Astrocyte": 12, "Oligodendrocyte": 10,
      "Microglia_Macrophages": 6, "Polydendrocyte": 5, "Endothelial_Stalk": 5,
      "Endothelial_Tip": 2, "Mural": 3}),
    # 2: myelinated axons: interfascicular oligodendrocytes dominate
    ("fibre_tracts", "corpus callosum, cingulum and alveus; external capsule; internal "
     "capsule / stria terminalis beside the ventricle; cerebral peduncle; the pale band "
     "under the ventricle (approximate)", 1.0,
     {"Oligodendrocyte": 60, "Astrocyte": 13, "Polydendrocyte": 8,
      "Microglia_Macrophages": 8, "Endothelial_Stalk": 6, "Endothelial_Tip": 2, "Mural": 3}),
    # 3: hippocampal strata without principal-cell bodies; Cajal-Retzius cells line the
    #    hippocampal fissure
    ("hippocampal_neuropil", "strata oriens, radiatum and lacunosum-moleculare; dentate "
     "molecular layer and hilus", 1.0,
     {"Astrocyte": 24, "Interneuron": 16, "Oligodendrocyte": 14, "Microglia_Macrophages": 11,
      "Polydendrocyte": 10, "Endothelial_Stalk": 10, "Endothelial_Tip": 5, "Mural": 6,
      "Cajal_Retzius": 4}),
    # 4-6: the packed principal-cell layers
    ("CA1_layer", "CA1 stratum pyramidale", 3.0,
     {"CA1": 70, "Interneuron": 8, "Astrocyte": 6, "Oligodendrocyte": 3,
      "Microglia_Macrophages": 3, "Polydendrocyte": 2, "Endothelial_Stalk": 4,
      "Endothelial_Tip": 2, "Mural": 2}),
    ("CA3_layer", "CA2/CA3 stratum pyramidale, into the dentate hilus", 3.0,
     {"CA3": 70, "Interneuron": 8, "Astrocyte": 6, "Oligodendrocyte": 3,
      "Microglia_Macrophages": 3, "Polydendrocyte": 2, "Endothelial_Stalk": 4,
      "Endothelial_Tip": 2, "Mural": 2}),
    # dentate granule cells, with neuroblasts of the subgranular zone
    ("dentate_granule_layer", "dentate gyrus granule cell layer (both blades) and "
     "subgranular zone", 3.0,
     {"Denate": 72, "Neurogenesis": 8, "Interneuron": 5, "Astrocyte": 5,
      "Microglia_Macrophages": 2, "Polydendrocyte": 2, "Oligodendrocyte": 1,
      "Endothelial_Stalk": 3, "Endothelial_Tip": 1, "Mural": 1}),
    # 7: thalamic relay neurons are VGLUT2 (Slc17a6) glutamatergic; few interneurons;
    #    many myelinated fibres
    ("thalamus", "dorsal thalamus, with the habenula at its dorsomedial corner; lower "
     "boundary (zona incerta) approximate", 1.0,
     {"Neuron.Slc17a6": 45, "Interneuron": 6, "Oligodendrocyte": 18, "Astrocyte": 12,
      "Microglia_Macrophages": 5, "Polydendrocyte": 4, "Endothelial_Stalk": 5,
      "Endothelial_Tip": 2, "Mural": 3}),
    # 8: choroid plexus epithelium, ependymal lining, stromal vessels and macrophages
    ("ventricle_choroid_plexus", "lateral ventricle with its choroid plexus and ependyma "
     "(the lumen itself is unlabelled)", 1.0,
     {"Choroid": 65, "Ependymal": 15, "Microglia_Macrophages": 8, "Endothelial_Stalk": 5,
      "Endothelial_Tip": 2, "Mural": 5}),
    # 9: striatal projection neurons are GABAergic (no such type in the reference:
    #    Interneuron stands in); fascicles of the internal capsule cross it
    ("striatum", "caudal caudoputamen with its fibre fascicles, lateral to the ventricle "
     "(approximate)", 1.0,
     {"Interneuron": 50, "Oligodendrocyte": 15, "Astrocyte": 12, "Microglia_Macrophages": 6,
      "Polydendrocyte": 5, "Endothelial_Stalk": 6, "Endothelial_Tip": 2, "Mural": 4}),
    # 10: mixed glutamatergic (VGLUT2) and GABAergic nuclei; tanycytes/ependyma at the
    #     third ventricle
    ("hypothalamus", "hypothalamus and zona incerta, ventral diencephalon (approximate)", 1.0,
     {"Neuron.Slc17a6": 25, "Interneuron": 22, "Astrocyte": 15, "Oligodendrocyte": 12,
      "Microglia_Macrophages": 6, "Polydendrocyte": 5, "Endothelial_Stalk": 6,
      "Endothelial_Tip": 2, "Mural": 4, "Ependymal": 3}),
    # 11: cortex-like basolateral and GABAergic central/medial nuclei
    ("amygdala", "amygdala, ventral to the ventricle (boundary approximate)", 1.0,
     {"Entorihinal": 30, "Interneuron": 22, "Astrocyte": 14, "Oligodendrocyte": 12,
      "Microglia_Macrophages": 6, "Polydendrocyte": 5, "Endothelial_Stalk": 6,
      "Endothelial_Tip": 2, "Mural": 3}),
]
REGION_ID = {name: i + 1 for i, (name, *_) in enumerate(REGIONS)}

# The drawing, in hires pixels (x, y) of tissue_hires_image.png (1872 x 2000), painted in
# this order: ("polygon", region, vertices) or ("band", region, width px, centre line).
# Large regions first and generous (later shapes cut them); the bands were traced on the
# haematoxylin-rich (blue) CA and dentate cell layers.
ANATOMY_DRAWING: list[tuple] = [
    ("polygon", "cortex", [(380, 380), (1520, 380), (1520, 1720), (380, 1720)]),
    ("polygon", "amygdala",
     [(745, 1390), (1050, 1390), (1110, 1430), (1160, 1465), (1180, 1510), (1140, 1548),
      (1050, 1568), (950, 1568), (860, 1548), (790, 1508), (760, 1450)]),
    ("polygon", "striatum",
     [(880, 840), (930, 870), (905, 960), (880, 1060), (900, 1160), (930, 1240), (960, 1300),
      (1000, 1350), (1040, 1390), (840, 1395), (760, 1395), (735, 1330), (712, 1250),
      (705, 1190), (720, 1100), (745, 1020), (785, 950), (830, 890)]),
    ("polygon", "hypothalamus",
     [(1100, 1265), (1470, 1295), (1470, 1720), (1170, 1720), (1175, 1520), (1110, 1420),
      (1060, 1330)]),
    ("polygon", "thalamus",
     [(930, 945), (1050, 925), (1150, 918), (1250, 928), (1330, 940), (1380, 918),
      (1460, 920), (1470, 1000), (1470, 1330), (1300, 1310), (1200, 1285), (1100, 1272),
      (1030, 1285), (990, 1200), (960, 1100), (940, 1000)]),
    ("polygon", "hippocampal_neuropil",
     [(905, 880), (930, 830), (975, 785), (1040, 742), (1100, 712), (1160, 697), (1240, 694),
      (1305, 706), (1348, 742), (1378, 788), (1405, 828), (1440, 845), (1460, 872),
      (1450, 912), (1400, 924), (1340, 936), (1280, 941), (1200, 931), (1160, 912),
      (1100, 921), (1040, 931), (990, 946), (950, 962), (915, 935)]),
    # corpus callosum / cingulum / alveus over the hippocampus
    ("band", "fibre_tracts", 26,
     [(1400, 832), (1372, 790), (1342, 744), (1302, 710), (1250, 694), (1150, 693),
      (1080, 712), (1000, 748), (940, 790), (895, 835), (860, 885)]),
    # external capsule along the striatum
    ("band", "fibre_tracts", 12,
     [(860, 870), (830, 890), (785, 950), (745, 1020), (720, 1100), (705, 1190), (712, 1250),
      (735, 1330), (755, 1390)]),
    # internal capsule / stria terminalis between the ventricle and the thalamus
    ("polygon", "fibre_tracts",
     [(885, 950), (962, 945), (970, 1000), (972, 1100), (990, 1200), (1015, 1275),
      (1040, 1300), (1010, 1330), (960, 1300), (920, 1230), (895, 1150), (880, 1060)]),
    # cerebral peduncle
    ("polygon", "fibre_tracts",
     [(1020, 1288), (1070, 1283), (1120, 1308), (1165, 1358), (1188, 1420), (1182, 1482),
      (1150, 1497), (1108, 1470), (1068, 1420), (1036, 1362), (1014, 1310)]),
    # pale fibre band under the ventricle
    ("band", "fibre_tracts", 24, [(800, 1415), (880, 1420), (960, 1425), (1040, 1420)]),
    ("polygon", "ventricle_choroid_plexus",
     [(852, 948), (875, 950), (878, 1000), (885, 1080), (898, 1160), (925, 1235), (955, 1300),
      (990, 1345), (1030, 1378), (1065, 1400), (1040, 1415), (990, 1412), (940, 1402),
      (895, 1380), (858, 1345), (828, 1292), (815, 1230), (812, 1150), (818, 1060),
      (832, 1000)]),
    ("band", "CA3_layer", 16,
     [(1045, 790), (1030, 800), (1015, 809), (1000, 820), (985, 837), (972, 855), (968, 875),
      (975, 893), (990, 901), (1015, 903), (1045, 902), (1075, 898), (1105, 888),
      (1135, 879), (1150, 876), (1165, 871), (1180, 866), (1195, 863)]),
    ("band", "CA1_layer", 14,
     [(1050, 786), (1060, 781), (1075, 768), (1090, 757), (1105, 748), (1120, 742),
      (1135, 734), (1150, 730), (1165, 726), (1180, 721), (1210, 718), (1240, 718),
      (1255, 721), (1270, 725), (1285, 735), (1300, 749), (1315, 769), (1330, 788),
      (1345, 804), (1360, 820), (1375, 837), (1390, 844), (1405, 848)]),
    # dentate gyrus: suprapyramidal (upper) and infrapyramidal (lower) blades, crest medial
    ("band", "dentate_granule_layer", 18,
     [(1148, 844), (1165, 840), (1195, 837), (1210, 835), (1225, 838), (1240, 848),
      (1255, 860), (1270, 873), (1285, 884), (1300, 893), (1320, 898), (1345, 897),
      (1358, 895)]),
    ("band", "dentate_granule_layer", 18,
     [(1152, 905), (1165, 894), (1180, 886), (1195, 884), (1210, 883), (1225, 886),
      (1240, 892), (1255, 901), (1270, 907), (1285, 910), (1300, 909), (1315, 906),
      (1330, 902), (1345, 897)]),
]
# fmt: on

OUT = REPO / "src" / "napari_stlnmf" / "samples"
MB_SRC = "visium_mouse_brain_cytassist_ffpe_hires_only"
HC_SRC = "visium_hippocampus_spacexr_demo"
SPATIAL_FILES = (
    "tissue_hires_image.png",
    "tissue_lowres_image.png",
    "tissue_positions.csv",
    "scalefactors_json.json",
)


def write_h5ad(adata: ad.AnnData, path: Path) -> None:
    adata.write_h5ad(path, compression="gzip", compression_opts=9)


def hippocampus(data: Path) -> None:
    out = OUT / "hippocampus"
    out.mkdir(parents=True, exist_ok=True)
    for name in ("spots.h5ad", "reference.h5ad"):
        a = ad.read_h5ad(data / HC_SRC / name)
        write_h5ad(a, out / name)
        b = ad.read_h5ad(out / name)
        assert (a.X != b.X).nnz == 0 and a.obs.equals(b.obs) and a.var_names.equals(b.var_names)
        for k in a.obsm:
            assert np.array_equal(a.obsm[k], b.obsm[k])
        print(f"hippocampus/{name}: {b.n_obs} x {b.n_vars}")


def tissue_mask(rgb: np.ndarray) -> np.ndarray:
    """Tissue pixels of the H&E: darker than the glass, cleaned (see the docstring)."""
    mask = rgb.astype(float).mean(axis=2) < TISSUE_GREY
    mask = ndi.binary_opening(mask, iterations=2)
    lab, n = ndi.label(mask)
    keep = np.zeros(n + 1, dtype=bool)
    keep[1:] = ndi.sum(mask, lab, np.arange(1, n + 1)) >= 5000
    mask = keep[lab]
    holes, n = ndi.label(~mask)
    small = np.zeros(n + 1, dtype=bool)
    small[1:] = ndi.sum(~mask, holes, np.arange(1, n + 1)) < 3000
    return mask | small[holes]


def draw_anatomy(rgb: np.ndarray) -> np.ndarray:
    """Paint ``ANATOMY_DRAWING`` on the hires grid and clip it to the tissue (uint8)."""
    h, w = rgb.shape[:2]
    img = Image.new("L", (w, h), 0)
    pen = ImageDraw.Draw(img)
    for kind, region, *rest in ANATOMY_DRAWING:
        value = REGION_ID[region]
        if kind == "polygon":
            pen.polygon(rest[0], fill=value)
        else:
            width, line = rest
            pen.line(line, fill=value, width=width, joint="curve")
            r = width / 2
            for x, y in (line[0], line[-1]):
                pen.ellipse((x - r, y - r, x + r, y + r), fill=value)
    return np.where(tissue_mask(rgb), np.asarray(img), 0).astype(np.uint8)


def disk_offsets(radius: float) -> tuple[np.ndarray, np.ndarray]:
    r = int(np.ceil(radius))
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    inside = dx**2 + dy**2 <= radius**2
    return dy[inside], dx[inside]


def spot_label_fractions(
    labels: np.ndarray, x: np.ndarray, y: np.ndarray, radius: float, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per spot (centre x, y in label pixels): label fractions over the labelled pixels of
    its disk (spots x k, columns = labels 1..k) and the label under its centre; both fall
    back to the nearest labelled pixel where there is no label."""
    nearest = ndi.distance_transform_edt(labels == 0, return_distances=False, return_indices=True)
    filled = labels[tuple(nearest)]
    h, w = labels.shape
    xi, yi = np.rint(x).astype(int), np.rint(y).astype(int)
    centre = filled[yi, xi].astype(int)
    dy, dx = disk_offsets(radius)
    px = np.clip(xi[:, None] + dx[None, :], 0, w - 1)
    py = np.clip(yi[:, None] + dy[None, :], 0, h - 1)
    g = labels[py, px].astype(int)
    counts = np.zeros((len(x), k + 1))
    np.add.at(counts, (np.repeat(np.arange(len(x)), g.shape[1]), g.ravel()), 1.0)
    counts = counts[:, 1:]
    empty = counts.sum(1) == 0
    counts[empty, centre[empty] - 1] = 1.0
    return counts / counts.sum(1, keepdims=True), centre


def random_fields(xy_pitch: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` smooth Gaussian fields at the points (spots x n), mean 0, sd ``GRF_SD``."""
    out = np.empty((len(xy_pitch), n))
    for t in range(n):
        w = rng.normal(0.0, 1.0 / GRF_LENGTH_PITCHES, size=(GRF_FEATURES, 2))
        b = rng.uniform(0.0, 2 * np.pi, size=GRF_FEATURES)
        a = rng.normal(size=GRF_FEATURES)
        f = np.cos(xy_pitch @ w.T + b) @ a
        out[:, t] = GRF_SD * (f - f.mean()) / f.std()
    return out


def composition_text(comp: dict[str, int]) -> str:
    return "; ".join(f"{t} {v}%" for t, v in sorted(comp.items(), key=lambda kv: -kv[1]))


def mouse_brain(data: Path) -> None:
    rng = np.random.default_rng(SEED)
    out = OUT / "mouse_brain"
    spatial_out = out / "outs" / "spatial"
    spatial_out.mkdir(parents=True, exist_ok=True)
    spatial_src = data / MB_SRC / "outs" / "spatial"
    for name in SPATIAL_FILES:
        shutil.copyfile(spatial_src / name, spatial_out / name)

    # 1. split the reference
    ref = ad.read_h5ad(data / HC_SRC / "reference.h5ad")
    types = list(ref.obs["cell_type"].cat.categories)
    labels = ref.obs["cell_type"].astype(str).to_numpy()
    pool_idx, ref_idx = [], []
    for t in types:
        idx = rng.permutation(np.flatnonzero(labels == t))
        assert len(idx) == 2 * POOL_PER_TYPE, (t, len(idx))
        pool_idx.append(np.sort(idx[:POOL_PER_TYPE]))
        ref_idx.append(idx[POOL_PER_TYPE:])
    ref_keep = np.sort(np.concatenate(ref_idx))
    shipped = ref[ref_keep].copy()
    shipped.X = sp.csr_matrix(shipped.X, dtype=np.int32)
    shipped.obs["cell_type"] = pd.Categorical(
        shipped.obs["cell_type"].astype(str), categories=types
    )
    write_h5ad(shipped, out / "reference.h5ad")
    pool_all = np.sort(np.concatenate(pool_idx))
    (out / "spot_pool_cells.txt").write_text(
        "".join(f"{n}\n" for n in ref.obs_names[pool_all]), encoding="utf-8"
    )

    # 2. the anatomical label image
    n_regions = len(REGIONS)
    sf = json.loads((spatial_src / "scalefactors_json.json").read_text())
    s = sf["tissue_hires_scalef"]
    rgb = np.asarray(Image.open(spatial_src / "tissue_hires_image.png").convert("RGB"))
    anatomy = draw_anatomy(rgb)
    Image.fromarray(anatomy, mode="L").save(out / LABELS_FILE, optimize=True)
    assert np.array_equal(np.asarray(Image.open(out / LABELS_FILE)), anatomy)

    # 3. region compositions (percent -> fractions), from the table
    n_types = len(types)
    comp = np.zeros((n_regions, n_types))
    for r, (name, _, _, table) in enumerate(REGIONS):
        assert sum(table.values()) == 100 and set(table) <= set(types), name
        for t, v in table.items():
            comp[r, types.index(t)] = v / 100.0
    density = np.array([d for _, _, d, _ in REGIONS])
    pd.DataFrame(
        {
            "region": np.arange(1, n_regions + 1),
            "name": [name for name, *_ in REGIONS],
            "structures": [what for _, what, _, _ in REGIONS],
            "density": density,
            "composition": [composition_text(table) for *_, table in REGIONS],
        }
    ).to_csv(out / NAMES_FILE, index=False, lineterminator="\n")

    # 4. per-spot compositions: density-weighted label fractions in the spot disk, then
    #    smooth random fields
    pos = pd.read_csv(spatial_src / "tissue_positions.csv", index_col=0)
    pos = pos[pos["in_tissue"] == 1]
    barcodes = pos.index.to_numpy().astype(str)
    n_spots = len(pos)
    xy = pos[["pxl_col_in_fullres", "pxl_row_in_fullres"]].to_numpy(float)
    d, _ = cKDTree(xy).query(xy, 2)
    pitch = float(np.median(d[:, 1]))
    frac, region = spot_label_fractions(
        anatomy, xy[:, 0] * s, xy[:, 1] * s, sf["spot_diameter_fullres"] * s / 2, n_regions
    )
    sizes = np.bincount(region, minlength=n_regions + 1)[1:]
    assert (sizes > 0).all(), sizes
    weighted = frac * density[None, :]
    p = (weighted / weighted.sum(1, keepdims=True)) @ comp
    fields = random_fields(xy / pitch, n_types, rng)
    p = p * np.exp(fields)
    p /= p.sum(1, keepdims=True)

    # 5. cells
    n_cells = 1 + rng.negative_binomial(NB_R, NB_R / (NB_R + NB_MEAN), size=n_spots)
    cell_counts = np.vstack([rng.multinomial(n, pi) for n, pi in zip(n_cells, p)])
    pool_by_type = [pool_idx[t] for t in range(n_types)]
    rows, cols = [], []
    for i in range(n_spots):
        for t in np.flatnonzero(cell_counts[i]):
            chosen = rng.choice(pool_by_type[t], size=int(cell_counts[i, t]), replace=True)
            rows.extend([i] * len(chosen))
            cols.extend(chosen.tolist())
    incidence = sp.csr_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(n_spots, ref.n_obs)
    )  # duplicates are summed
    summed = np.asarray((incidence @ sp.csr_matrix(ref.X, dtype=float)).todense())

    # 6. counts
    n_genes = ref.n_vars
    z = rng.normal(0.0, PLATFORM_SD, size=n_genes)
    platform = np.exp(z - z.mean())
    capture = np.exp(rng.normal(0.0, CAPTURE_SD, size=n_spots))
    expected = summed * platform[None, :] * capture[:, None]
    counts = rng.poisson(expected).astype(np.int32)
    genes = [str(g) for g in ref.var_names]
    write_10x_h5(
        out / "outs" / "filtered_feature_bc_matrix.h5",
        sp.csr_matrix(counts),
        list(barcodes),
        genes,
        genes,
    )

    # 7. ground truth
    truth = pd.DataFrame(cell_counts, index=pd.Index(barcodes, name="barcode"), columns=types)
    truth.insert(0, "n_cells", n_cells)
    truth.insert(0, "region", region)
    truth.to_csv(out / "truth.csv", lineterminator="\n")
    truth[["region"]].to_csv(out / "regions.csv", lineterminator="\n")

    fractions = cell_counts / n_cells[:, None]
    region_means = np.vstack([fractions[region == r + 1].mean(0) for r in range(n_regions)])
    umi = counts.sum(1)
    stats = {
        "n_spots": n_spots,
        "n_genes": n_genes,
        "pitch": pitch,
        "median_cells": float(np.median(n_cells)),
        "mean_cells": float(n_cells.mean()),
        "max_cells": int(n_cells.max()),
        "median_umi": float(np.median(umi)),
        "umi_range": (int(umi.min()), int(umi.max())),
        "region_sizes": sizes.tolist(),
        "region_means": [
            [(types[t], m[t]) for t in np.argsort(-m, kind="stable")[:3]] for m in region_means
        ],
        "pure_spots": int((frac.max(1) == 1).sum()),
        "type_cells": dict(zip(types, cell_counts.sum(0).tolist())),
        "density": counts.astype(bool).mean(),
    }
    write_source_md(out / "SOURCE.md", stats)
    print(json.dumps({k: v for k, v in stats.items() if k != "region_means"}, default=str))
    for r, (name, *_) in enumerate(REGIONS):
        tops = ", ".join(f"{t} {v:.2f}" for t, v in stats["region_means"][r])
        print(f"{r + 1:2d} {name:26s} {sizes[r]:4d} spots  {tops}")


def write_source_md(path: Path, st: dict) -> None:
    regions = "\n".join(
        f"| {r + 1} | {name} | {st['region_sizes'][r]} | "
        + ", ".join(f"{t} {share:.2f}" for t, share in st["region_means"][r])
        + " |"
        for r, (name, *_) in enumerate(REGIONS)
    )
    recipe = "\n".join(
        f"| {r + 1} | {name} | {what} | {dens:g} | {composition_text(table)} |"
        for r, (name, what, dens, table) in enumerate(REGIONS)
    )
    n_spots, n_genes, pitch = st["n_spots"], st["n_genes"], st["pitch"]
    med_cells, mean_cells, max_cells = st["median_cells"], st["mean_cells"], st["max_cells"]
    med_umi, (umi_lo, umi_hi), density = st["median_umi"], st["umi_range"], st["density"]
    n_regions, pure = len(REGIONS), st["pure_spots"]
    text = f"""# mouse_brain: real CytAssist H&E and spot layout, counts composed from real cells

A sample Visium slide made from real parts, with exact ground truth. Built by
`scripts/make_samples.py` (seed `{SEED}`, deterministic); the recipe is in that script's
docstring and summarised below.

## Origin and licences
- **Image and spots** (`outs/spatial/`: `tissue_hires_image.png`, `tissue_lowres_image.png`,
  `tissue_positions.csv`, `scalefactors_json.json`, byte-identical copies): 10x Genomics public
  dataset **CytAssist FFPE Mouse Brain, Rep 1** (Visium CytAssist, Space Ranger 2.x), taken from
  GitHub BioData-Yipeng/SpatialRNA-seq-mouse-brain-example-analysis-with-Seurat, commit
  `8d7417110db5b8f566e2397699a28af870664ba6`, path `data/spatial/`. 10x Genomics publishes its
  demo data under **CC BY 4.0**; credit 10x Genomics. The real count matrix is not included.
- **Cells** (the counts in `outs/filtered_feature_bc_matrix.h5` and `reference.h5ad`): the
  hippocampus scRNA-seq reference of the spacexr (RCTD) package, GitHub dmcable/spacexr, commit
  `744153c633da7ff70d0988308a160633fcf44af7`, `inst/extdata/Reference/Visium_Ref/` (**GPL-3.0**);
  510 cells (17 types x 30) x 307 genes from DropViz (Saunders A. et al., *Cell* 174,
  1015-1030, 2018); used in Cable D.M. et al., *Nat. Biotechnol.* 40, 517-526 (2022).
- **Anatomy** (`anatomy_labels.png`, `region_names.csv`): drawn for this sample on the H&E
  above (vertex lists in `scripts/make_samples.py`); no atlas was registered.

The counts are **synthetic compositions of real cells placed by an anatomical drawing**: they
are not the measured expression of this section. Each spot mixes the cell types that belong in
the anatomical regions under it (CA1 cells on the CA1 band, dentate granule cells on the dentate
blades, VGLUT2 neurons in the thalamus, choroid plexus cells in the ventricle, ...), in
proportions chosen by the recipe, not measured. The reference holds hippocampal DropViz types
only, so some stand in for cells it lacks (see Recipe, step 3). Region boundaries are a
hand drawing at the resolution of the hires image; those marked "approximate" are the
drawer's best reading of the H&E, not atlas boundaries.

## Files
| file | content |
|---|---|
| `outs/spatial/*` | real Space Ranger 2.x spatial folder (hires 1872 x 2000, lowres 562 x 600) |
| `outs/filtered_feature_bc_matrix.h5` | 10x HDF5 v3, {n_spots:,} in-tissue spots x {n_genes} genes|
| `reference.h5ad` | 255 real cells (15 per type) x {n_genes} genes, CSR int32, `obs["cell_type"]` |
| `spot_pool_cells.txt` | the other 255 cells (15 per type), used only to build the spots |
| `truth.csv` | `barcode, region, n_cells`, then the number of cells of each type per spot |
| `regions.csv` | `barcode, region` (1..{n_regions}, anatomical; names in `region_names.csv`) |
| `anatomy_labels.png` | uint8 label image on the hires grid (1..{n_regions}; 0 = glass, lumen) |
| `region_names.csv` | `region, name, structures, density, composition` (the recipe's table) |

Gene ids: the source has no Ensembl IDs, so `features/id` = `features/name` = the MGI symbol
(none are invented); `features/genome` is `unknown`.

## Recipe (seed {SEED})
1. Each type's 30 cells are permuted; 15 go to the spot pool, 15 to the shipped reference
   (disjoint: the reference never contains a cell that is in a spot).
2. Anatomy: a hand drawing of the section (polygons, plus thick polylines traced on the
   visible CA1, CA2/CA3 and dentate cell bands), painted in order on the hires grid and
   clipped to the tissue (hires grey < {TISSUE_GREY}): `anatomy_labels.png`.
3. Region compositions from anatomy (table below), using only the reference types that belong
   in each place. Stand-ins: `Entorihinal` (DropViz entorhinal excitatory neurons) for cortical
   and amygdalar excitatory neurons; `Neuron.Slc17a6` (VGLUT2) for thalamic and hypothalamic
   excitatory neurons; `Interneuron` (GABAergic) for striatal projection neurons and
   hypothalamic GABAergic neurons.
4. Spot composition = the region compositions mixed by the label fractions inside the spot
   disk (radius `spot_diameter_fullres * tissue_hires_scalef / 2`), weighted by relative cell
   density (3 in the CA1/CA3/dentate cell layers, 1 elsewhere), x exp(Gaussian random field
   per type; squared-exponential kernel, length {GRF_LENGTH_PITCHES:g} pitches of
   {pitch:.0f} full-res px, sd {GRF_SD}), renormalised; {pure:,} of the {n_spots:,} spots lie
   in one region only. A spot's region is the label under its centre (nearest label if none).
5. Cells per spot = 1 + NegBin(r={NB_R:g}, mean {NB_MEAN:g}); cells per type ~ Multinomial; each
   cell drawn with replacement from its type's 15 pool cells.
6. Counts = Poisson(sum of the cells' raw counts x per-gene platform effect (log-normal sd
   {PLATFORM_SD}, geometric mean 1) x per-spot capture efficiency (log-normal sd {CAPTURE_SD}));
   depth left at the summed-cell depth.

| id | region | structures | density | composition (% of cells) |
|---|---|---|---|---|
{recipe}

## Numbers
- Spots {n_spots:,}; genes {n_genes} (all shared with `reference.h5ad`); 17 types.
- Cells per spot: median {med_cells:g}, mean {mean_cells:.2f}, max {max_cells}.
- UMI per spot: median {med_umi:g} (range {umi_lo}-{umi_hi});
  {density:.0%} of the matrix entries are non-zero.

| region | name | spots | dominant types (mean true fraction over the region's spots) |
|---|---|---|---|
{regions}

Ground truth is a **cell-number fraction**: `truth[type] / truth["n_cells"]`.
"""
    path.write_text(text, encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "__init__.py").touch()
    hippocampus(args.data)
    mouse_brain(args.data)
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"samples folder: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
