"""Cohort manifests: columns, relative paths, names, and the errors that stop a cohort."""

from __future__ import annotations

import pytest

from napari_stlnmf.io.errors import InputError
from napari_stlnmf.io.manifest import read_manifest, slide_name


def test_paths_are_relative_to_the_manifest_and_names_come_from_paths(tmp_path):
    m = tmp_path / "sub" / "cohort.csv"
    m.parent.mkdir()
    m.write_text(
        "# study X\n"
        "Path,Regions,Name\n"
        "a/outs,a_regions.csv,\n"
        "/abs/slide B.h5ad,,\n"
        "c.csv.gz,,my name!\n"
    )
    entries = read_manifest(m)
    assert [e.name for e in entries] == ["a", "slide_B", "my_name"]
    assert entries[0].path == m.parent / "a" / "outs"
    assert entries[0].regions == m.parent / "a_regions.csv"
    assert str(entries[1].path) == "/abs/slide B.h5ad" and entries[1].regions is None
    assert [e.row for e in entries] == [1, 2, 3]


def test_tsv_and_alternative_column_names(tmp_path):
    m = tmp_path / "cohort.tsv"
    m.write_text("spatial\tsample_id\nx.h5ad\tS1\ny.h5ad\tS2\n")
    assert [(e.name, e.path.name) for e in read_manifest(m)] == [("S1", "x.h5ad"), ("S2", "y.h5ad")]


@pytest.mark.parametrize(
    "text, words",
    [
        ("file,regions\na.h5ad,\n", "no 'path' column"),
        ("path,name\n", "no slides"),
        ("path,name\na.h5ad,S\nb.h5ad,S\n", "rows 1 and 2 are both named 'S'"),
        ("path\nx/a.h5ad\ny/a.h5ad\n", "rows 1 and 2 are both named 'a'"),
        ("path,name\n,S\n", "row 1: empty path"),
        ("path,name\na.h5ad,...\n", "no usable slide name"),
    ],
)
def test_bad_manifests_are_one_clear_error(tmp_path, text, words):
    m = tmp_path / "m.csv"
    m.write_text(text)
    with pytest.raises(InputError, match="m.csv") as e:
        read_manifest(m)
    assert words in str(e.value)


def test_missing_and_binary_manifests(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_manifest(tmp_path / "none.csv")
    m = tmp_path / "m.csv"
    m.write_bytes(b"\xff\xfe\x00\x01" * 50)
    with pytest.raises(InputError, match="m.csv"):
        read_manifest(m)


def test_slide_names():
    assert slide_name("/data/patient 7/outs") == "patient_7"
    assert slide_name("/data/x.tsv.gz") == "x"
    assert slide_name("/data/store.zarr") == "store"
    assert slide_name("/d/p1/binned_outputs") == "p1"


def test_per_slide_coords_and_fullres_image_reach_the_commands(tmp_path):
    from napari_stlnmf.cohort import _deconvolve_argv, _train_argv

    m = tmp_path / "m.csv"
    m.write_text("path,coords,fullres_image\ncounts.csv,xy.csv,\nouts,,big.tif\n")
    a, b = read_manifest(m)
    assert a.coords == tmp_path / "xy.csv" and a.fullres_image is None
    assert b.fullres_image == tmp_path / "big.tif" and b.coords is None
    argv = _deconvolve_argv(a, tmp_path / "out", tmp_path / "m.safetensors", {"seed": 1})
    assert argv[:5] == [
        "deconvolve",
        "--spatial",
        str(tmp_path / "counts.csv"),
        "--coords",
        str(tmp_path / "xy.csv"),
    ]
    assert argv[argv.index("--out") + 1] == str(tmp_path / "out" / "slides" / "counts")
    assert argv[-3:] == ["--seed", "1", "-q"]
    argv = _train_argv(b, tmp_path / "m.safetensors", {"fractions": "mrna"})
    assert "--fullres-image" in argv and "--fractions" not in argv  # train has no --fractions
