"""Shared inputs of the bad-input suite and its one-line count in the terminal summary."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


class Env:
    """Valid inputs built once per session (lazily): the hippocampus sample as .h5ad slide
    and reference files, and a tiny model trained on them."""

    def __init__(self, root: Path):
        self.root = root

    @cached_property
    def sample(self):
        from napari_stlnmf.io.samples import load_sample

        return load_sample("hippocampus")

    @cached_property
    def slide(self) -> Path:
        path = self.root / "slide.h5ad"
        spatial = self.sample.spatial.copy()
        spatial.uns = {}
        spatial.write_h5ad(path)
        return path

    @cached_property
    def ref(self) -> Path:
        path = self.root / "ref.h5ad"
        self.sample.reference.write_h5ad(path)
        return path

    @cached_property
    def slide_adata(self):
        from napari_stlnmf.io.spatial import read_spatial

        return read_spatial(self.slide)

    @cached_property
    def model(self) -> Path:
        """A tiny STL NMF model (1 epoch, 4 layers) trained on the hippocampus sample."""
        from napari_stlnmf.cli import main

        path = self.root / "tiny.safetensors"
        argv = ["train", "--spatial", self.slide, "--reference", self.ref]
        argv += ["--label-key", "cell_type", "--epochs", "1", "--layers", "4", "-q"]
        code = main([str(a) for a in [*argv, "--save", path]])
        assert code == 0
        return path


@pytest.fixture(scope="session")
def env(tmp_path_factory) -> Env:
    return Env(tmp_path_factory.mktemp("robustness-env"))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print ``bad-input cases: N passed / M`` for the tests of this folder."""
    outcomes: dict[str, set[str]] = {}
    for key in ("passed", "failed", "error", "skipped", "xfailed", "xpassed"):
        for rep in terminalreporter.stats.get(key, []):
            nodeid = getattr(rep, "nodeid", "")
            if not nodeid:
                continue
            path = (Path(config.rootpath) / nodeid.split("::")[0]).resolve()
            if HERE in path.parents:
                outcomes.setdefault(nodeid, set()).add(key)
    if outcomes:
        passed = sum(1 for keys in outcomes.values() if keys == {"passed"})
        terminalreporter.write_line(f"bad-input cases: {passed} passed / {len(outcomes)}")
