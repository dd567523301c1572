"""The first-day flow through napari's menus (tests/gui/first_day.py), asserting what a
user sees: docks open, regions kept and counted live, maps that show the tissue, titled
grid tiles, and File ▸ Save Selected Layers writing the CLI's CSV."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.gui.first_day import first_day


@pytest.mark.slow
def test_first_day_through_the_menus(make_napari_viewer, tmp_path):
    from napari_stlnmf.gui.layers import region_colors

    viewer = make_napari_viewer(show=True)
    obs = first_day(viewer, tmp_path)

    # the sample, and its regions survive adding the Regions layer
    assert obs["layers_after_sample"] == [
        "mouse_brain hires",
        "mouse_brain spots",
        "mouse_brain ground truth",
    ]
    np.testing.assert_array_equal(obs["regions_after_add"], obs["sample_regions"])
    # one stroke: the live count names the new region with the spots it covers
    n, label = obs["stroke_spots"], obs["stroke_label"]
    assert n >= 10, n
    assert f"{label}: {n}" in obs["region_text"], obs["region_text"]
    np.testing.assert_allclose(
        obs["spot_colors_in_stroke"], np.repeat(region_colors([label]), n, axis=0), atol=1e-6
    )
    # all three docks opened from the Plugins menu
    docks = " ".join(viewer.window._wrapped_dock_widgets)
    for title in ("Tissue regions", "STL NMF deconvolution", "Cell-type legend"):
        assert title in docks
    # the deconvolution dock uses (and shows) the painted Regions layer
    assert obs["dock_regions_choice"] == "Regions"
    assert obs["label_key"] == "cell_type"
    assert "17 cell types" in obs["overlap_text"]
    assert obs["last_error"] is None, obs["last_error"]
    assert "deconvolved 2310 spots" in obs["status"], obs["status"]
    # maps over the H&E: translucent layers, the spots layer out of the way
    assert len(obs["result_names"]) == 17
    assert all(0.3 <= o < 1.0 for o in obs["result_opacity"]), obs["result_opacity"]
    assert not obs["spots_visible_after_results"]
    # robust scaling: CA1's bar ends at its 99th percentile, and the legend says so
    lo, hi = obs["ca1_limits"]
    assert lo == pytest.approx(np.nanpercentile(obs["ca1_values"], 1), abs=1e-6)
    assert hi == pytest.approx(max(obs["ca1_p99"], 0.05), rel=1e-6)
    assert obs["legend_range"] == ("0.00", f"{hi:.2f}")
    # grid view: every per-type tile shows its title
    assert obs["grid_titles"] and all(
        title and visible for title, visible in obs["grid_titles"].values()
    ), obs["grid_titles"]
    # the 90 % intervals: the width layer follows the selected type, the legend shows its
    # bar, the status bar shows the hovered spot's interval, and Save writes the bounds
    assert obs["width_type_after_ca1"] == "CA1"
    title, type_box = obs["legend_on_width"]
    assert "CA1: width of the 90 % interval" in title and type_box
    assert np.nanmax(obs["width_values"]) > 0.01
    assert obs["ca1_interval_feature"].startswith("[") and "CA1 90% interval" in obs["ca1_status"]
    for suffix in ("_q05", "_q95"):
        mine = obs["saved_csv"].with_name(f"napari_proportions{suffix}.csv")
        assert (
            mine.read_bytes() == obs["cli_csv"].with_name(f"proportions{suffix}.csv").read_bytes()
        )
    # Save Selected Layers: this plugin's writer is the default file type, and the file
    # is the CLI's proportions.csv for the same slide, regions, settings and seed
    assert obs["save_filters"].startswith("STL NMF"), obs["save_filters"]
    assert obs["cli_returncode"] == 0, obs["cli_stderr"]
    assert obs["saved_csv"] is not None
    ours = pd.read_csv(obs["saved_csv"], dtype={"barcode": str})
    cli = pd.read_csv(obs["cli_csv"], dtype={"barcode": str})
    assert list(ours.columns) == list(cli.columns)
    pd.testing.assert_frame_equal(ours, cli, check_exact=False, rtol=1e-9, atol=0)
    assert obs["saved_csv"].read_bytes() == obs["cli_csv"].read_bytes()
