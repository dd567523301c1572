"""Result files: proportions table/CSV, region means, result h5ad and JSON, all atomic."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from napari_stlnmf.io.atomic import atomic_write
from napari_stlnmf.io.export import (
    proportions_table,
    read_proportions_csv,
    region_means,
    write_json,
    write_proportions_csv,
    write_region_means_csv,
    write_result_h5ad,
)

TYPES = ["Astro", "Neuron", "Oligo"]
BARCODES = ["0001", "0002", "0010", "0100", "1000"]
COORDS = np.array([[10.0, 20.0], [11.5, 21.0], [30.0, 5.0], [40.0, 6.0], [50.0, 7.0]])
REGIONS = np.array([1, 1, 2, 2, 3])
PROPS = np.array(
    [
        [0.5, 0.25, 0.25],
        [0.125, 0.625, 0.25],
        [0.75, 0.0, 0.25],
        [np.nan, np.nan, np.nan],
        [np.nan, np.nan, np.nan],
    ]
)


def _table():
    return proportions_table(BARCODES, COORDS, REGIONS, PROPS, TYPES)


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --------------------------------------------------------------------------- tables
def test_proportions_table_columns_and_values():
    t = _table()
    assert list(t.columns) == ["barcode", "x", "y", "region", *TYPES]
    assert list(t["barcode"]) == BARCODES
    np.testing.assert_array_equal(t[["x", "y"]].to_numpy(), COORDS)
    np.testing.assert_array_equal(t["region"], REGIONS)
    np.testing.assert_array_equal(t[TYPES].to_numpy(), PROPS)


def test_proportions_table_barcodes_become_strings():
    t = proportions_table([1, 2, 3, 4, 5], COORDS, REGIONS, PROPS, TYPES)
    assert list(t["barcode"]) == ["1", "2", "3", "4", "5"]


@pytest.mark.parametrize("bad", ["x", "region", "barcode"])
def test_proportions_table_type_name_clash(bad):
    with pytest.raises(ValueError, match="clash"):
        proportions_table(BARCODES, COORDS, REGIONS, PROPS, ["Astro", bad, "Oligo"])


def test_region_means_numbers():
    m = region_means(_table(), TYPES)
    assert list(m.columns) == ["region", "n_spots", *TYPES]
    assert list(m["region"]) == [1, 2, 3]
    # region 2 has one finite and one NaN row; region 3 only a NaN row
    assert list(m["n_spots"]) == [2, 1, 0]
    assert m["n_spots"].dtype.kind == "i"
    np.testing.assert_allclose(m.loc[0, TYPES].to_numpy(float), [0.3125, 0.4375, 0.25])
    np.testing.assert_allclose(m.loc[1, TYPES].to_numpy(float), [0.75, 0.0, 0.25])
    assert m.loc[2, TYPES].isna().all()


def test_region_means_string_regions():
    t = proportions_table(BARCODES, COORDS, ["b", "a", "b", "a", "b"], PROPS, TYPES)
    m = region_means(t, TYPES)
    assert list(m["region"]) == ["a", "b"]
    assert list(m["n_spots"]) == [1, 2]
    np.testing.assert_allclose(m.loc[0, TYPES].to_numpy(float), PROPS[1])
    np.testing.assert_allclose(m.loc[1, TYPES].to_numpy(float), PROPS[[0, 2]].mean(0))


# --------------------------------------------------------------------- CSV round trip
def test_proportions_csv_round_trip(tmp_path):
    t = _table()
    path = write_proportions_csv(tmp_path / "props.csv", t)
    assert path == tmp_path / "props.csv"
    lines = path.read_text().splitlines()
    assert lines[0] == "barcode,x,y,region,Astro,Neuron,Oligo"
    assert lines[1] == "0001,10,20,1,0.5,0.25,0.25"
    assert lines[4] == "0100,40,6,2,,,"  # NaN row kept as empty cells
    back = read_proportions_csv(path)
    assert list(back["barcode"]) == BARCODES  # leading zeros kept
    assert back["barcode"].dtype == object
    # x/y come back as int64 when all whole numbers; values are what matters
    pd.testing.assert_frame_equal(back, t, check_dtype=False)
    assert _files(tmp_path) == ["props.csv"]


def test_region_means_csv(tmp_path):
    m = region_means(_table(), TYPES)
    write_region_means_csv(tmp_path / "means.csv", m)
    back = pd.read_csv(tmp_path / "means.csv")
    pd.testing.assert_frame_equal(back, m, check_dtype=False)


# -------------------------------------------------------------------------- atomicity
def _half_to_csv(self, path_or_buf=None, *args, **kwargs):
    Path(path_or_buf).write_bytes(b"barcode,x,y,reg")
    raise RuntimeError("disk full")


def _half_fast_csv(table, path):
    Path(path).write_bytes(b"barcode,x,y,reg")
    raise RuntimeError("disk full")


def test_proportions_csv_failure_keeps_old_file(tmp_path, monkeypatch):
    import napari_stlnmf.io.export as export

    path = write_proportions_csv(tmp_path / "props.csv", _table())
    old = path.read_bytes()
    monkeypatch.setattr(export, "_write_csv_fast", _half_fast_csv)
    with pytest.raises(RuntimeError, match="disk full"):
        write_proportions_csv(path, _table().iloc[:2])
    assert path.read_bytes() == old
    assert _files(tmp_path) == ["props.csv"]


def test_region_means_csv_failure_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(pd.DataFrame, "to_csv", _half_to_csv)
    with pytest.raises(RuntimeError):
        write_region_means_csv(tmp_path / "means.csv", region_means(_table(), TYPES))
    assert _files(tmp_path) == []


def test_atomic_write_half_written_then_error(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old contents")

    def write(tmp):
        Path(tmp).write_bytes(b"new cont")
        raise OSError("no space")

    with pytest.raises(OSError, match="no space"):
        atomic_write(path, write)
    assert path.read_bytes() == b"old contents"
    assert _files(tmp_path) == ["f.bin"]

    def interrupted(tmp):
        Path(tmp).write_bytes(b"x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, interrupted)
    assert path.read_bytes() == b"old contents"
    assert _files(tmp_path) == ["f.bin"]


def test_atomic_write_success_replaces(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(b"new"))
    assert path.read_bytes() == b"new"
    assert _files(tmp_path) == ["f.bin"]


def test_write_json_failure_keeps_old_file(tmp_path, monkeypatch):
    path = write_json(tmp_path / "run.json", {"a": 1})
    old = path.read_bytes()
    real = Path.write_text

    def half(self, data, *args, **kwargs):
        real(self, data[:4], *args, **kwargs)
        raise OSError("quota")

    monkeypatch.setattr(Path, "write_text", half)
    with pytest.raises(OSError, match="quota"):
        write_json(path, {"a": 2, "b": [1, 2, 3]})
    monkeypatch.undo()
    assert path.read_bytes() == old
    assert _files(tmp_path) == ["run.json"]
    # not serialisable: fails before touching the file
    with pytest.raises(TypeError):
        write_json(path, {"a": object()})
    assert path.read_bytes() == old
    assert _files(tmp_path) == ["run.json"]


def test_write_json_content(tmp_path):
    data = {
        "n": np.int64(3),
        "arr": np.array([1.5, 2.0]),
        "bad": float("nan"),
        "path": tmp_path / "x",
        "nested": {1: (np.float32(0.5), "s")},
    }
    path = write_json(tmp_path / "run.json", data)
    text = path.read_text()
    assert text.endswith("\n")
    back = json.loads(text)
    assert back == {
        "n": 3,
        "arr": [1.5, 2.0],
        "bad": None,
        "path": str(tmp_path / "x"),
        "nested": {"1": [0.5, "s"]},
    }


# ------------------------------------------------------------------------ permissions
@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_new_file_mode_follows_umask(tmp_path, mask):
    prev = os.umask(mask)
    try:
        p1 = write_proportions_csv(tmp_path / "props.csv", _table())
        p2 = write_json(tmp_path / "run.json", {"a": 1})
        assert _umask() == mask
    finally:
        os.umask(prev)
    for p in (p1, p2):
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~mask


def test_new_file_mode_current_umask(tmp_path):
    p = write_json(tmp_path / "run.json", {"a": 1})
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~_umask()


def test_replacing_keeps_mode(tmp_path):
    path = tmp_path / "props.csv"
    path.write_text("old\n")
    os.chmod(path, 0o640)
    write_proportions_csv(path, _table())
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.read_text().startswith("barcode,")


# ------------------------------------------------------------------------- result h5ad
def _slide():
    rng = np.random.default_rng(0)
    n = len(BARCODES)
    genes = ["Actb", "Gapdh", "Sox2"]
    var = pd.DataFrame(
        {"gene_symbols": genes, "gene_ids": ["E1", "E2", "E3"]}, index=pd.Index(genes)
    )
    obs = pd.DataFrame(
        {"in_tissue": np.ones(n, np.int64), "array_row": np.arange(n), "array_col": np.arange(n)},
        index=pd.Index(BARCODES),
    )
    a = ad.AnnData(
        X=sp.csr_matrix(rng.integers(0, 9, size=(n, 3)).astype(np.int32)), obs=obs, var=var
    )
    a.obsm["spatial"] = COORDS * 10
    a.uns["spatial"] = {
        "lib": {
            "images": {
                "hires": rng.integers(0, 255, size=(40, 60, 3), dtype=np.uint8),
                "lowres": rng.integers(0, 255, size=(12, 18, 3), dtype=np.uint8),
            },
            "scalefactors": {
                "tissue_hires_scalef": 0.1,
                "tissue_lowres_scalef": 0.03,
                "spot_diameter_fullres": 9.0,
            },
            "metadata": {"source": "tables", "path": "/some/where"},
        }
    }
    return a


METADATA = {
    "version": "1.0",
    "genes": ["Actb", "Gapdh"],
    "losses": [0.5, 0.25, 0.125],
    "epochs": [1, 2],
    "seed": None,
    "path": Path("/tmp/out"),
    "flag": True,
    "mixed": ["a", 1],
    "empty": [],
    "params": {"lr": 0.001, "device": "cpu", "gpu": None, "types": TYPES},
}


def test_result_h5ad_contents(tmp_path):
    a = _slide()
    path = write_result_h5ad(tmp_path / "res.h5ad", a, _table(), TYPES, METADATA)
    assert "stlnmf" not in a.uns and "stlnmf_proportions" not in a.obsm  # input untouched
    assert _files(tmp_path) == ["res.h5ad"]
    back = ad.read_h5ad(path)
    props = back.obsm["stlnmf_proportions"]
    assert isinstance(props, pd.DataFrame)
    assert list(props.columns) == TYPES
    assert list(props.index) == BARCODES
    np.testing.assert_array_equal(props.to_numpy(), PROPS)
    assert list(back.obs["stlnmf_dominant_type"]) == ["Astro", "Neuron", "Astro", "", ""]
    assert list(back.obs["stlnmf_region"]) == ["1", "1", "2", "2", "3"]
    np.testing.assert_array_equal(back.X.toarray(), a.X.toarray())
    np.testing.assert_array_equal(
        back.uns["spatial"]["lib"]["images"]["hires"], a.uns["spatial"]["lib"]["images"]["hires"]
    )
    meta = back.uns["stlnmf"]
    assert isinstance(meta, dict)
    assert meta["version"] == "1.0"
    assert list(meta["genes"]) == ["Actb", "Gapdh"]
    np.testing.assert_array_equal(meta["losses"], [0.5, 0.25, 0.125])
    assert np.asarray(meta["losses"]).dtype == np.float64
    np.testing.assert_array_equal(meta["epochs"], [1, 2])
    assert "seed" not in meta
    assert meta["path"] == "/tmp/out"
    assert bool(meta["flag"]) is True
    assert json.loads(meta["mixed"]) == ["a", 1]
    assert len(meta["empty"]) == 0
    assert isinstance(meta["params"], dict)
    assert set(meta["params"]) == {"lr", "device", "types"}
    assert meta["params"]["lr"] == pytest.approx(0.001)
    assert meta["params"]["device"] == "cpu"
    assert list(meta["params"]["types"]) == TYPES


def test_result_h5ad_failure_keeps_old_file(tmp_path, monkeypatch):
    path = write_result_h5ad(tmp_path / "res.h5ad", _slide(), _table(), TYPES, {"a": "b"})
    old = path.read_bytes()

    def garbage(self, filename=None, *args, **kwargs):
        Path(filename).write_bytes(b"\x89HDF garbage")
        raise RuntimeError("write failed")

    monkeypatch.setattr(ad.AnnData, "write_h5ad", garbage)
    with pytest.raises(RuntimeError, match="write failed"):
        write_result_h5ad(path, _slide(), _table(), TYPES, {"a": "c"})
    monkeypatch.undo()
    assert path.read_bytes() == old
    assert _files(tmp_path) == ["res.h5ad"]
    assert ad.read_h5ad(path).uns["stlnmf"]["a"] == "b"


# -------------------------------------------------------------------------- fast CSV writer
@pytest.mark.parametrize("region", ["ints", "text", "text with commas"])
def test_fast_csv_reads_back_as_pandas_6g(tmp_path, region):
    """The pyarrow writer gives the numbers pandas' ``float_format="%.6g"`` gives, NaN
    rows as empty cells, unquoted plain text, and quotes text holding commas."""
    rng = np.random.default_rng(0)
    n = 500
    props = rng.dirichlet(np.ones(3), size=n) * 10.0 ** rng.integers(-7, 1, size=(n, 1))
    props[3] = np.nan
    regions = {
        "ints": rng.integers(1, 4, n),
        "text": rng.choice(["cortex", "white matter"], n),
        "text with commas": rng.choice(["a,b", 'say "x"'], n),
    }[region]
    xy = rng.random((n, 2)) * 123456.789
    t = proportions_table([f"bc-{i}" for i in range(n)], xy, regions, props, ["A", "B", "C"])
    fast = write_proportions_csv(tmp_path / "fast.csv", t)
    t.to_csv(tmp_path / "pandas.csv", index=False, float_format="%.6g")
    a = pd.read_csv(fast, dtype={"barcode": str, "region": str})
    b = pd.read_csv(tmp_path / "pandas.csv", dtype={"barcode": str, "region": str})
    assert list(a.columns) == list(b.columns)
    assert (a["barcode"] == b["barcode"]).all() and (a["region"] == b["region"]).all()
    num = ["x", "y", "A", "B", "C"]
    np.testing.assert_array_equal(a[num].to_numpy(), b[num].to_numpy())
    assert a.iloc[3][["A", "B", "C"]].isna().all()
    lines = fast.read_text().splitlines()
    assert lines[0] == "barcode,x,y,region,A,B,C"
    assert lines[1].startswith("bc-0,")
    assert ",,," in lines[4]  # the NaN row: empty cells
