"""Packaging checks: headless import hygiene and the npe2 manifest."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

_GUI_PREFIXES = ("qtpy", "PyQt6", "PySide6", "PyQt5", "PySide2")


def test_core_import_pulls_in_no_napari_or_qt():
    code = (
        "import sys\n"
        "import napari_stlnmf, napari_stlnmf.core\n"
        f"gui = {_GUI_PREFIXES!r}\n"
        "bad = sorted(m for m in sys.modules\n"
        "    if (m.startswith('napari') and m.split('.')[0] != 'napari_stlnmf')\n"
        "    or m.split('.')[0] in gui)\n"
        "print('\\n'.join(bad))\n"
        "sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (
        "importing napari_stlnmf / napari_stlnmf.core loaded GUI modules:\n"
        f"{proc.stdout}\n{proc.stderr}"
    )


def test_npe2_reads_packaged_manifest():
    from npe2 import PluginManifest

    pm = PluginManifest.from_distribution("napari-stlnmf")
    assert pm.name == "napari-stlnmf"
    samples = pm.contributions.sample_data or []
    keys = {s.key: s for s in samples}
    assert "simulated_slide" in keys, keys
    sample = keys["simulated_slide"]
    assert sample.command == "napari-stlnmf.make_simulated_slide"
    commands = {c.id: c for c in pm.contributions.commands or []}
    assert (
        commands["napari-stlnmf.make_simulated_slide"].python_name
        == "napari_stlnmf._sample_data:make_simulated_slide"
    )


def test_root_and_package_manifest_identical():
    root = (REPO_ROOT / "napari.yaml").read_text(encoding="utf-8")
    packaged = resources.files("napari_stlnmf").joinpath("napari.yaml").read_text(encoding="utf-8")
    assert packaged == root
    in_tree = REPO_ROOT / "src" / "napari_stlnmf" / "napari.yaml"
    assert in_tree.read_text(encoding="utf-8") == root
