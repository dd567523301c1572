"""``stlnmf batch``: a cohort on a Dask LocalCluster of 2 worker processes, with a bad
slide and a worker killed mid-run; the results equal sequential ``stlnmf deconvolve``."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from napari_stlnmf.cli import main

from .slides import TINY, write_cohort

GOOD = ["slide0", "slide1", "slide2"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """The cohort's files, a model trained on slide0, and each good slide deconvolved
    one by one with ``stlnmf deconvolve --model`` (the sequential reference)."""
    root = tmp_path_factory.mktemp("cohort")
    manifest = write_cohort(root / "data")
    model = root / "model.safetensors"
    data = root / "data"
    argv = ["train", "--spatial", data / "s0.h5ad", "--regions", data / "s0_regions.csv"]
    argv += ["--reference", data / "ref.h5ad", "--label-key", "cell_type", "--save", model]
    assert main([str(a) for a in [*argv, *TINY, "-q"]]) == 0
    sequential = {}
    for i, name in enumerate(GOOD):
        out = root / "sequential" / name
        argv = ["deconvolve", "--spatial", data / f"s{i}.h5ad"]
        argv += ["--regions", data / f"s{i}_regions.csv", "--model", model, "--out", out, "-q"]
        assert main([str(a) for a in argv]) == 0
        sequential[name] = out
    return {"root": root, "manifest": manifest, "model": model, "sequential": sequential}


def _same_outputs(a, b):
    for name in ("proportions.csv", "region_means.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    x, y = ad.read_h5ad(a / "result.h5ad"), ad.read_h5ad(b / "result.h5ad")
    assert x.obs_names.equals(y.obs_names)
    np.testing.assert_array_equal(x.obsm["stlnmf_proportions"], y.obsm["stlnmf_proportions"])
    np.testing.assert_array_equal(x.obs["stlnmf_dominant_type"], y.obs["stlnmf_dominant_type"])
    ra, rb = json.loads((a / "run.json").read_text()), json.loads((b / "run.json").read_text())
    for key in ("arguments", "genes", "cell_types", "n_spots", "model"):
        if key == "arguments":
            ra[key].pop("out"), rb[key].pop("out")
        assert ra[key] == rb[key], key


def _kill_a_busy_worker(client, stop: threading.Event) -> dict:
    """SIGKILL the worker process that holds a slide task as soon as one is seen."""
    while not stop.is_set():
        processing = client.processing()
        for addr, keys in processing.items():
            slides = [k for k in keys if "stlnmf-slide-" in str(k)]
            if slides:
                pid = client.run(os.getpid, workers=[addr])[addr]
                os.kill(pid, signal.SIGKILL)
                return {"pid": pid, "keys": [str(k) for k in slides]}
        time.sleep(0.02)
    return {}


def test_cohort_with_a_bad_slide_and_a_killed_worker(cohort, tmp_path, capsys):
    from distributed import Client, LocalCluster

    out = tmp_path / "out"
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        codes = []
        argv = ["batch", cohort["manifest"], "--model", cohort["model"], "--out", out]
        argv += ["--scheduler", cluster.scheduler_address, "-q"]
        run = threading.Thread(target=lambda: codes.append(main([str(a) for a in argv])))
        stop = threading.Event()
        run.start()
        killed = _kill_a_busy_worker(client, stop)
        run.join(timeout=300)
        stop.set()
        assert not run.is_alive()
    err = capsys.readouterr().err
    assert killed, "no slide task was ever seen running"
    assert codes == [3], err  # some slides failed
    assert "stlnmf: slide bad failed:" in err and "bad.h5ad" in err and "Traceback" not in err

    summary = json.loads((out / "run.json").read_text())
    status = {s["name"]: s for s in summary["slides"]}
    assert [s["name"] for s in summary["slides"]] == ["slide0", "slide1", "bad", "slide2"]
    assert status["bad"]["status"] == "failed"
    assert "bad.h5ad" in status["bad"]["error"] and "\n" not in status["bad"]["error"]
    assert summary["status"] == {"done": 3, "skipped": 0, "failed": 1, "not_run": 0}
    # the killed worker's slide ran again elsewhere
    killed_names = [n for n in GOOD if any(f"-{n}-" in k for k in killed["keys"])]
    for name in killed_names:
        assert status[name]["status"] == "done"
        assert not status[name]["worker"].endswith(f":{killed['pid']}")
    for name in GOOD:
        folder = out / "slides" / name
        _same_outputs(folder, cohort["sequential"][name])
        assert not list(folder.glob(".*")), "temporary files left behind"
    assert not (out / "slides" / "bad").exists()

    table = pd.read_csv(out / "cohort_region_means.csv", dtype={"region": str})
    assert list(table.columns[:3]) == ["slide", "region", "n_spots"]
    assert set(table.slide) == set(GOOD)
    for name in GOOD:
        means = pd.read_csv(out / "slides" / name / "region_means.csv", dtype={"region": str})
        mine = table[table.slide == name].drop(columns="slide").reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, means, check_exact=False, rtol=1e-5)
        n = json.loads((out / "slides" / name / "run.json").read_text())["n_spots"]
        assert status[name]["n_spots"] == n == mine.n_spots.sum()
    assert summary["model"]["sha256"] and summary["model"]["trained_by_this_cohort"] is False
    assert summary["cluster"]["kind"] == "existing scheduler"


def test_rerun_skips_complete_slides_and_redoes_changed_ones(cohort, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["batch", cohort["manifest"], "--model", cohort["model"], "--out", out]
    argv += ["--workers", "2", "-q"]
    assert main([str(a) for a in argv]) == 3
    first = json.loads((out / "run.json").read_text())
    assert first["cluster"] == {
        "kind": "LocalCluster",
        "address": first["cluster"]["address"],
        "n_workers": 2,
    }
    assert first["status"]["done"] == 3
    stamps = {n: (out / "slides" / n / "result.h5ad").stat().st_mtime_ns for n in GOOD}
    # a slide's outputs removed: only that slide runs again
    (out / "slides" / "slide1" / "run.json").unlink()
    assert main([str(a) for a in argv]) == 3
    second = json.loads((out / "run.json").read_text())
    assert {s["name"]: s["status"] for s in second["slides"]} == {
        "slide0": "skipped",
        "slide1": "done",
        "bad": "failed",
        "slide2": "skipped",
    }
    for n in ("slide0", "slide2"):
        assert (out / "slides" / n / "result.h5ad").stat().st_mtime_ns == stamps[n]
    _same_outputs(out / "slides" / "slide1", cohort["sequential"]["slide1"])
    table = pd.read_csv(out / "cohort_region_means.csv")
    assert set(table.slide) == set(GOOD)
    # another option: every slide is redone, with it
    assert main([str(a) for a in [*argv, "--fractions", "mrna"]]) == 3
    third = json.loads((out / "run.json").read_text())
    assert third["status"]["done"] == 3 and third["status"]["skipped"] == 0
    run = json.loads((out / "slides" / "slide0" / "run.json").read_text())
    assert run["fractions"] == "mrna"
    capsys.readouterr()


def test_cohort_trains_once_on_the_first_readable_slide(tmp_path, capsys):
    manifest = write_cohort(tmp_path / "data", n_good=2, bad_at=0)
    out = tmp_path / "out"
    argv = ["batch", manifest, "--reference", tmp_path / "data" / "ref.h5ad"]
    argv += ["--label-key", "cell_type", "--out", out, "--workers", "2", "-q", *TINY]
    assert main([str(a) for a in argv]) == 3
    summary = json.loads((out / "run.json").read_text())
    assert summary["model"]["trained_by_this_cohort"] is True
    assert summary["status"] == {"done": 2, "skipped": 0, "failed": 1, "not_run": 0}
    assert summary["timings"]["train_seconds"] > 0
    model = out / "model.safetensors"
    sha = summary["model"]["sha256"]
    # the same as stlnmf train on that slide (the bad first slide passed over)
    alone = tmp_path / "alone.safetensors"
    data = tmp_path / "data"
    train = ["train", "--spatial", data / "s0.h5ad", "--regions", data / "s0_regions.csv"]
    train += ["--reference", data / "ref.h5ad", "--label-key", "cell_type", "--save", alone]
    assert main([str(a) for a in [*train, *TINY, "-q"]]) == 0
    from napari_stlnmf.io.model_file import load_model

    a, b = load_model(model), load_model(alone)
    assert a.genes_ == b.genes_ and a.cell_types_ == b.cell_types_
    np.testing.assert_array_equal(
        a.learned_parameters()["lambda1"], b.learned_parameters()["lambda1"]
    )
    # a rerun reuses the model and skips every slide
    assert main([str(a) for a in argv]) == 3
    again = json.loads((out / "run.json").read_text())
    assert again["model"]["sha256"] == sha and "train_seconds" not in again["timings"]
    assert again["status"]["skipped"] == 2
    # other training options: the model is trained again
    argv2 = [a if a != "8" else "6" for a in argv]
    assert main([str(a) for a in argv2]) == 3
    third = json.loads((out / "run.json").read_text())
    assert "train_seconds" in third["timings"] and third["model"]["sha256"] != sha
    assert third["status"]["done"] == 2
    capsys.readouterr()
