"""The ``stlnmf`` command line, end to end on the bundled sample and on bad input."""

import json
import subprocess
import sys

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from napari_stlnmf.cli import main
from napari_stlnmf.io.samples import load_sample

TINY = ["--epochs", "2", "--layers", "8"]


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("stlnmf")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    code = main(["deconvolve", "--sample", "mouse_brain", "--out", str(out), "-q", *TINY])
    assert code == 0
    return out


def test_help_reads_like_a_manual(capsys):
    with pytest.raises(SystemExit) as e:
        main(["deconvolve", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for words in (
        "--spatial",
        "--reference",
        "--label-key",
        "--regions",
        "--model",
        "--device",
        "--seed",
        "--out",
        "outputs",
        "proportions.csv",
        "run.json",
        "exit codes",
        "examples",
        "library-size",
    ):
        assert words in text, words


def test_deconvolve_sample_writes_every_output(sample_run):
    out = sample_run
    for name in (
        "proportions.csv",
        "region_means.csv",
        "result.h5ad",
        "run.json",
        "proportions.png",
    ):
        assert (out / name).stat().st_size > 0, name
    sample = load_sample("mouse_brain")
    table = pd.read_csv(out / "proportions.csv", dtype={"barcode": str})
    types = list(sample.truth.columns)
    assert list(table.columns) == ["barcode", "x", "y", "region", *types]
    assert list(table.barcode) == list(sample.spatial.obs_names)
    np.testing.assert_allclose(table[types].sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(table[["x", "y"]], sample.spatial.obsm["spatial"], atol=1e-6)
    assert sorted(table.region.unique()) == list(range(1, 12))  # anatomical regions

    run_json = json.loads((out / "run.json").read_text())
    assert run_json["seed"] == 0
    assert run_json["fractions"] == "cells"
    assert run_json["genes"]["overlap"]["n_shared"] == 307
    assert run_json["genes"]["n_used"] == len(run_json["genes"]["used"]) > 100
    assert run_json["model"]["method"] == "STLNMF"
    assert run_json["model"]["epochs_run"] >= 1
    assert run_json["genes"]["selection"] == "auto"
    # whether training beat the untrained network, said plainly
    improved = run_json["model"]["training_improved"]
    assert isinstance(improved, bool)
    outcome = run_json["model"]["training_outcome"]
    assert ("untrained network is kept" in outcome) == (not improved), outcome
    assert set(run_json["timings"]) >= {
        "read_seconds",
        "train_seconds",
        "deconvolve_seconds",
        "total_seconds",
    }
    assert run_json["versions"]["napari_stlnmf"]
    # the sample's truth: far better than a uniform guess
    uniform = np.sqrt(np.mean((sample.truth.to_numpy() - 1 / len(types)) ** 2))
    assert run_json["truth_metrics"]["rmse"] < 0.7 * uniform  # tiny model: 8 layers, 2 epochs

    means = pd.read_csv(out / "region_means.csv")
    assert list(means.columns[:2]) == ["region", "n_spots"]
    assert means.n_spots.sum() == len(table)
    expected = table.groupby("region")[types].mean()
    np.testing.assert_allclose(means.set_index("region")[types], expected, atol=1e-5)

    result = ad.read_h5ad(out / "result.h5ad")
    props = result.obsm["stlnmf_proportions"]
    assert list(props.columns) == types
    np.testing.assert_allclose(props.to_numpy(), table[types].to_numpy(), atol=1e-5)
    assert result.uns["stlnmf"]["fractions"] == "cells"
    assert list(result.uns["stlnmf"]["cell_types"]) == types
    dominant = np.asarray(types)[table[types].to_numpy().argmax(1)]
    assert (result.obs["stlnmf_dominant_type"].astype(str).to_numpy() == dominant).all()


def test_mrna_fractions_weight_cells_by_library_size(tmp_path, capsys):
    runs = {}
    for kind in ("cells", "mrna"):
        out = tmp_path / kind
        code, _, err = run(
            [
                "deconvolve",
                "--sample",
                "mouse_brain",
                "--method",
                "plainkl",
                "--fractions",
                kind,
                "--no-figure",
                "-q",
                "--out",
                out,
            ],
            capsys,
        )
        assert code == 0, err
        runs[kind] = (
            pd.read_csv(out / "proportions.csv"),
            json.loads((out / "run.json").read_text()),
        )
    cells, meta = runs["cells"]
    mrna, meta_m = runs["mrna"]
    assert meta_m["fractions"] == "mrna" and "mRNA" in meta_m["fractions_meaning"]
    types = meta["cell_types"]
    lib = np.asarray(meta["library_sizes"])
    w = cells[types].to_numpy() * lib
    np.testing.assert_allclose(mrna[types].to_numpy(), w / w.sum(1, keepdims=True), atol=1e-5)


def test_train_info_and_deconvolve_with_model(tmp_path, capsys):
    model = tmp_path / "m.safetensors"
    code, _, err = run(["train", "--sample", "mouse_brain", "--save", model, "-q", *TINY], capsys)
    assert code == 0, err
    code, out, _ = run(["info", model], capsys)
    assert code == 0
    assert "cell types  17" in out and "8 layers" in out and "lambda1" in out
    res = tmp_path / "res"
    code, _, err = run(
        [
            "deconvolve",
            "--sample",
            "mouse_brain",
            "--model",
            model,
            "-q",
            "--no-figure",
            "--out",
            res,
        ],
        capsys,
    )
    assert code == 0, err
    run_json = json.loads((res / "run.json").read_text())
    assert run_json["timings"]["train_seconds"] == 0.0
    # same seed and settings without --model: identical numbers
    res2 = tmp_path / "res2"
    code, _, err = run(
        ["deconvolve", "--sample", "mouse_brain", "-q", "--no-figure", *TINY, "--out", res2], capsys
    )
    assert code == 0, err
    a = pd.read_csv(res / "proportions.csv")
    b = pd.read_csv(res2 / "proportions.csv")
    np.testing.assert_allclose(a.iloc[:, 4:], b.iloc[:, 4:], atol=1e-5)


@pytest.fixture
def slide_files(tmp_path):
    """The hippocampus sample as an h5ad slide + h5ad reference on disk."""
    s = load_sample("hippocampus")
    slide, ref = tmp_path / "slide.h5ad", tmp_path / "ref.h5ad"
    spatial = s.spatial.copy()
    spatial.uns = {}
    spatial.write_h5ad(slide)
    s.reference.write_h5ad(ref)
    return slide, ref, s


def test_h5ad_slide_with_regions_csv_and_zero_count_spots(slide_files, tmp_path, capsys):
    slide, ref, s = slide_files
    a = ad.read_h5ad(slide)
    x = sp.csr_matrix(a.X).tolil()
    x[:3, :] = 0  # three empty spots must stay, as NaN rows
    a.X = sp.csr_matrix(x)
    a.write_h5ad(slide)
    regions = tmp_path / "regions.csv"
    pd.DataFrame({"barcode": a.obs_names, "region": np.arange(a.n_obs) % 3}).to_csv(
        regions, index=False
    )
    out = tmp_path / "out"
    code, _, err = run(
        [
            "deconvolve",
            "--spatial",
            slide,
            "--reference",
            ref,
            "--label-key",
            "cell_type",
            "--regions",
            regions,
            "--method",
            "plainkl",
            "--no-figure",
            "--out",
            out,
        ],
        capsys,
    )
    assert code == 0, err
    assert "warning" in err and "3 of 313 spots have no counts" in err
    table = pd.read_csv(out / "proportions.csv")
    assert len(table) == 313
    assert table.iloc[:3, 4:].isna().all().all()
    assert np.isfinite(table.iloc[3:, 4:].to_numpy()).all()
    assert sorted(table.region.unique()) == [0, 1, 2]
    meta = json.loads((out / "run.json").read_text())
    assert meta["n_spots_nan"] == 3
    assert meta["genes"]["overlap"]["n_shared"] == 124


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--spatial", "/nonexistent/slide.h5ad", "--reference", "{ref}"], "nonexistent"),
        (["--spatial", "{slide}", "--reference", "/no/ref.h5ad"], "/no/ref.h5ad"),
        (
            ["--spatial", "{slide}", "--reference", "{ref}", "--label-key", "celltype_wrong"],
            "celltype_wrong",
        ),
        (["--sample", "no_such_sample"], "no_such_sample"),
        (
            ["--spatial", "{slide}", "--reference", "{ref}", "--regions", "/no/regions.csv"],
            "regions",
        ),
        (["--spatial", "{slide}", "--reference", "{ref}", "--device", "cuda"], "cuda"),
        (["--spatial", "{counts}", "--reference", "{ref}"], "coord"),
        (["--spatial", "{slide}", "--model", "{slide}"], "model"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, needle, slide_files, tmp_path, capsys):
    slide, ref, _ = slide_files
    if "--device" in argv:
        import torch

        if torch.cuda.is_available():
            pytest.skip("CUDA is available here")
    counts = tmp_path / "counts.csv"
    pd.DataFrame([[1, 2], [3, 4]], index=["s1", "s2"], columns=["g1", "g2"]).to_csv(counts)
    argv = [a.format(slide=slide, ref=ref, counts=counts) for a in argv]
    out = tmp_path / "out"
    code, _, err = run(["deconvolve", *argv, "--out", out, "-q", *TINY], capsys)
    assert code == 2
    line = one_line_error(err)
    assert needle.lower() in line.lower(), line
    assert not (out / "proportions.csv").exists()


def test_wrong_label_key_lists_columns(slide_files, tmp_path, capsys):
    slide, ref, _ = slide_files
    code, _, err = run(
        [
            "deconvolve",
            "--spatial",
            slide,
            "--reference",
            ref,
            "--label-key",
            "nope",
            "--out",
            tmp_path / "o",
        ],
        capsys,
    )
    assert code == 2
    assert "cell_type" in one_line_error(err)


def test_missing_required_argument_is_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        main(["deconvolve", "--sample", "mouse_brain"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out" in err


def test_console_script_runs_without_napari(tmp_path):
    code = (
        "import sys; from napari_stlnmf.cli import main; rc = main(['info', '/no/model']); "
        "assert 'napari' not in sys.modules and 'qtpy' not in sys.modules; sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().startswith("stlnmf: error:")


def test_gene_weights_and_warm_start_options_reach_the_model(tmp_path, capsys):
    """The shipped data term (gene weights, warm start) and its off switches."""
    outs = {}
    for name, extra in (
        ("default", []),
        ("plain", ["--gene-weights", "none", "--warm-start", "0"]),
    ):
        out = tmp_path / name
        argv = ["deconvolve", "--sample", "mouse_brain", "--epochs", "0", "--layers", "8"]
        code, _, err = run([*argv, *extra, "-q", "--no-figure", "--out", out], capsys)
        assert code == 0, err
        outs[name] = (
            pd.read_csv(out / "proportions.csv"),
            json.loads((out / "run.json").read_text())["model"],
        )
    (a, info_a), (b, info_b) = outs["default"], outs["plain"]
    assert info_a["gene_weights"] == "auto" and info_a["warm_start"] == 100
    assert info_b["gene_weights"] == "none" and info_b["warm_start"] == 0
    types = [c for c in a.columns if c not in ("barcode", "x", "y", "region")]
    assert np.abs(a[types].to_numpy() - b[types].to_numpy()).max() > 0.05
    with pytest.raises(SystemExit) as e:
        main(["deconvolve", "--sample", "mouse_brain", "--gene-weights", "x", "--out", "o"])
    assert e.value.code == 2
    assert "--gene-weights" in one_line_error(capsys.readouterr().err)
