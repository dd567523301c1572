"""Which data term: closed-form probes behind the gene-weighted KL default.

On the marker genes of every real dataset (same ``pipeline.prepare`` as the CLI), fit each
spot with nothing learned and nothing spatial, 300 multiplicative updates from uniform
fractions, and score cell fractions against the truth (RMSE):

- ``plain KL``: Poisson/KL, ``n <- n * B^T(x / Bn) / B^T 1``;
- ``KL, 1/Fano weights``: the shipped data term (``Reference.gene_weights``);
- ``NB, moment-matched``: negative binomial with ``r_sg = mu_sg^2 / (N_s phi_g B-mix)``
  from the reference's pooled within-type overdispersion ``phi_g`` (dense in genes);
- ``KL + gene scale``: plain KL with a per-gene platform scale re-estimated every 10
  updates from the slide's pseudo-bulk, shrunk to 1 by a Gamma(100, 100) prior.

    python benchmarks/bench_data_terms.py [--datasets ...]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from bench_accuracy import BENCH, load

from napari_stlnmf.core.metrics import score
from napari_stlnmf.io.reference import reference_from_anndata
from napari_stlnmf.pipeline import prepare

N_ITER = 300


def _start(x, b):
    return np.full((x.shape[0], b.shape[1]), 1.0 / b.shape[1])


def plain_kl(x, b, w=None):
    w = np.ones(b.shape[0]) if w is None else w
    n = _start(x, b)
    for _ in range(N_ITER):
        n *= ((w * x / (n @ b.T + 1e-12)) @ b) / (w @ b)[None, :]
    return n


def nb_moment_matched(x, b, phi):
    n = plain_kl(x, b)  # start from the Poisson fit so N_s is meaningful
    for _ in range(N_ITER):
        mu = n @ b.T + 1e-12
        r = mu / np.maximum(phi[None, :] * mu / n.sum(1, keepdims=True).clip(1e-3), 1e-12)
        n *= ((x / mu) @ b) / (((x + r) / (mu + r)) @ b)
    return n


def kl_gene_scale(x, b, a=100.0):
    n, g, xs = _start(x, b), np.ones(b.shape[0]), x.sum(0)
    for it in range(N_ITER):
        bs = b * g[:, None]
        n *= ((x / (n @ bs.T + 1e-12)) @ bs) / bs.sum(0)[None, :]
        if it % 10 == 9:
            g = (xs + a) / ((n @ b.T).sum(0) + a)
    return n


def pooled_phi(ref) -> np.ndarray:
    c, lab = ref.cells.toarray(), ref.labels
    num = den = 0.0
    for t in range(ref.n_types):
        ct = c[lab == t]
        if len(ct) < 2:
            continue
        mu = ct.mean(0)
        num = num + np.clip(ct.var(0, ddof=1) - mu, 0, None) * len(ct)
        den = den + mu**2 * len(ct)
    return num / np.maximum(den, 1e-12)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--datasets", nargs="+", default=None)
    args = ap.parse_args()
    names = args.datasets or ["mouse_brain"] + sorted(
        p.name for p in BENCH.glob("*") if (p / "truth.csv").exists()
    )
    print("| dataset | plain KL | KL, 1/Fano weights | NB, moment-matched | KL + gene scale |")
    print("|---|---|---|---|---|")
    for name in names:
        spatial, ref_adata, regions, truth = load(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = reference_from_anndata(ref_adata, "cell_type", min_cells=1)
            prep = prepare(spatial, ref, regions=regions)
        x = prep.X.toarray().astype(float)
        b = prep.reference.signatures
        t = truth.reindex(index=prep.barcodes, columns=prep.reference.cell_types).to_numpy()
        ok = x.sum(1) > 0
        fits = [
            plain_kl(x, b),
            plain_kl(x, b, prep.reference.weights),
            nb_moment_matched(x, b, pooled_phi(prep.reference)),
            kl_gene_scale(x, b),
        ]
        cells = []
        for n in fits:
            frac = n / n.sum(1, keepdims=True)
            cells.append(f"{score(frac[ok], t[ok])['rmse']:.4f}")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
