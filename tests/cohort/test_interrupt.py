"""Ctrl-C during ``stlnmf batch``: the command stops cleanly and a rerun finishes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd

from .slides import TINY, write_cohort


def _stlnmf(*argv) -> list[str]:
    return [sys.executable, "-m", "napari_stlnmf.cli", *map(str, argv)]


def _group_gone(pgid: int, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def test_ctrl_c_stops_the_cohort_cleanly_and_a_rerun_finishes(tmp_path):
    data = tmp_path / "data"
    manifest = write_cohort(data, n_good=3, bad_at=None)
    # twelve slides: the three, four times over
    rows = pd.read_csv(manifest)
    many = pd.concat([rows.assign(name=rows.name + f"_{k}") for k in range(4)], ignore_index=True)
    many.to_csv(manifest, index=False)
    out = tmp_path / "out"
    argv = _stlnmf(
        "batch",
        manifest,
        "--reference",
        data / "ref.h5ad",
        "--label-key",
        "cell_type",
        "--out",
        out,
        "--workers",
        "2",
        *TINY,
    )
    # its own process group, as a shell job: Ctrl-C reaches the command and its workers
    proc = subprocess.Popen(
        argv,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        end = time.monotonic() + 240
        while not any((out / "slides").glob("*/run.json")) and time.monotonic() < end:
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "stlnmf: interrupted; finished slides are kept" in err
    assert _group_gone(proc.pid, 30), "worker processes outlived the command"
    summary = json.loads((out / "run.json").read_text())
    assert summary["interrupted"] is True
    st = summary["status"]
    assert st["done"] >= 1 and st["not_run"] >= 1 and st["failed"] == 0, st
    done = [s["name"] for s in summary["slides"] if s["status"] == "done"]
    for name in done:
        assert (out / "slides" / name / "run.json").is_file()
    assert not list(out.rglob(".*.tmp")), "temporary files left behind"
    # the rerun trains nothing, skips what was done and finishes the rest
    again = subprocess.run(argv + ["-q"], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    final = json.loads((out / "run.json").read_text())
    assert final["status"] == {
        "done": 12 - len(done),
        "skipped": len(done),
        "failed": 0,
        "not_run": 0,
    }
    assert "train_seconds" not in final["timings"]
