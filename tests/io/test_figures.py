import numpy as np
import pandas as pd
import pytest
from PIL import Image

from napari_stlnmf.io import figures


@pytest.mark.parametrize("bin_above", [10**9, 10])
def test_proportion_maps_scatter_and_binned(tmp_path, monkeypatch, bin_above):
    monkeypatch.setattr(figures, "BIN_ABOVE", bin_above)
    rng = np.random.default_rng(0)
    n = 400
    table = pd.DataFrame(
        {
            "barcode": [f"s{i}" for i in range(n)],
            "x": rng.uniform(0, 1e3, n),
            "y": rng.uniform(0, 1e3, n),
            "region": 0,
        }
    )
    props = rng.dirichlet(np.ones(3), size=n)
    props[:5] = np.nan  # empty spots are drawn grey / left blank, never a crash
    for j, t in enumerate("ABC"):
        table[t] = props[:, j]
    out = figures.write_proportion_maps(tmp_path / "maps.png", table, list("ABC"))
    with Image.open(out) as im:
        assert im.format == "PNG" and im.width > 300 and im.height > 200
        colours = np.asarray(im.convert("RGB")).reshape(-1, 3)
    # viridis pixels present: the maps were drawn, not left white
    assert (np.abs(colours.astype(int) - [68, 1, 84]).sum(1) < 60).sum() > 20
