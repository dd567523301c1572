"""Module layout: old import paths keep working, the version has one source, and importing
the library changes no global warning filter."""

import subprocess
import sys
import textwrap


def test_old_import_paths_still_work():
    from napari_stlnmf.core import NNLS, STLNMF, PlainKL, ZeroCountSpotsWarning, estimator

    assert estimator.STLNMF is STLNMF and estimator.PlainKL is PlainKL
    assert estimator.NNLS is NNLS and estimator.ZeroCountSpotsWarning is ZeroCountSpotsWarning
    assert estimator.DEFAULT_EPOCHS > 0 and estimator.DEFAULT_LAYERS > 0
    assert estimator.DEFAULT_WARM_START >= 0


def test_version_comes_from_the_distribution():
    from importlib.metadata import version

    import napari_stlnmf
    from napari_stlnmf._version import __version__

    assert napari_stlnmf.__version__ == __version__ == version("napari-stlnmf")


def test_no_global_warning_filter_and_no_csr_beta_notice():
    """The CSR "beta" notice is silenced where the CSR tensors are built, not by a filter
    installed for the whole program at import."""
    code = textwrap.dedent(
        """
        import warnings
        import numpy, scipy.optimize, scipy.sparse, scipy.spatial, torch  # their own filters
        before = list(warnings.filters)
        from napari_stlnmf.core import PlainKL, STLNMF
        from napari_stlnmf.core.simulate import simulate_demo_slide
        assert warnings.filters == before, "importing the core changed warnings.filters"
        d = simulate_demo_slide(n_rows=6, n_cols=7, n_types=3, n_genes=30, seed=1)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            PlainKL(n_iter=3, device="cpu").fit(d["reference"]).transform(d["counts"])
            STLNMF(epochs=0, n_layers=2, warm_start=2, device="cpu").fit(
                d["reference"], d["coords"], d["regions"]
            ).transform(d["counts"], d["coords"], d["regions"])
        notices = [str(w.message) for w in caught if "Sparse" in str(w.message)]
        assert not notices, notices
        assert warnings.filters == before, "running the core changed warnings.filters"
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
