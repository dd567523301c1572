"""Marker genes vs all shared genes, through the same pipeline as ``stlnmf deconvolve``.

For the bundled ``mouse_brain`` sample and every dataset with ground truth in
``../shared/bench/datasets`` (spatial.h5ad, reference.h5ad with obs["cell_type"], truth.csv),
run STL NMF, plain KL and NNLS with marker genes (default) and with every shared gene, and
print RMSE / JSD / Pearson r against the truth, genes used and seconds.

    python benchmarks/bench_markers.py [--seeds 0 1 2] [--out benchmarks/out/markers.csv]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import anndata as ad
import pandas as pd

from napari_stlnmf.core.metrics import truth_metrics
from napari_stlnmf.io.reference import reference_from_anndata
from napari_stlnmf.io.samples import load_sample
from napari_stlnmf.options import METHODS
from napari_stlnmf.pipeline import deconvolve, prepare, train

BENCH = Path(__file__).resolve().parents[2] / "shared" / "bench" / "datasets"


def datasets():
    s = load_sample("mouse_brain")
    yield "mouse_brain (sample)", s.spatial, s.reference, s.regions, s.truth
    if not BENCH.is_dir():
        return
    for d in sorted(p for p in BENCH.iterdir() if (p / "truth.csv").exists()):
        spatial = ad.read_h5ad(d / "spatial.h5ad")
        ref = ad.read_h5ad(d / "reference.h5ad")
        truth = pd.read_csv(d / "truth.csv", index_col=0)
        truth.index = truth.index.astype(str)
        regions = spatial.obs["region"].to_numpy() if "region" in spatial.obs else None
        yield d.name, spatial, ref, regions, truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--out", default="benchmarks/out/markers.csv")
    args = ap.parse_args()
    rows = []
    for name, spatial, ref_adata, regions, truth in datasets():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = reference_from_anndata(ref_adata, "cell_type", min_cells=1)
        for markers in (True, False):
            prep = prepare(spatial, ref, regions=regions, markers=markers)
            for method in args.methods:
                for seed in args.seeds if method == "stlnmf" else [0]:
                    t0 = time.perf_counter()
                    model = train(prep, method=method, seed=seed, device="cpu")
                    t1 = time.perf_counter()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        res = deconvolve(prep, model)
                    t2 = time.perf_counter()
                    s = truth_metrics(res.proportions, truth)
                    row = {
                        "dataset": name,
                        "genes": "markers" if markers else "all shared",
                        "n_genes": prep.X.shape[1],
                        "method": method,
                        "seed": seed,
                        **{k: round(v, 4) for k, v in s.items()},
                        "train_s": round(t1 - t0, 2),
                        "infer_s": round(t2 - t1, 2),
                    }
                    rows.append(row)
                    print(row, flush=True)
    df = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    med = df.groupby(["dataset", "method", "genes", "n_genes"])[["rmse", "jsd", "pearson"]]
    print(med.median().round(4).to_string())


if __name__ == "__main__":
    main()
