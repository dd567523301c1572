"""Categorical palette: distinct, saturated, away from the H&E stains (pure numpy)."""

import numpy as np
import pytest

from napari_stlnmf.gui.palette import (
    NONE_COLOR,
    NONE_NAME,
    PALETTE,
    STAIN_REFERENCES,
    category_colors,
    delta_e2000,
    hex_to_rgb,
    srgb_to_lab,
)


def lab_of(hexes):
    return srgb_to_lab(np.array([hex_to_rgb(h) for h in hexes]))


def pairwise_min(lab):
    d = delta_e2000(lab[:, None], lab[None])
    d[np.diag_indices(len(lab))] = np.inf
    return d.min()


def test_colour_science_matches_published_values():
    np.testing.assert_allclose(srgb_to_lab([1.0, 0.0, 0.0]), [53.2408, 80.0925, 67.2032], atol=1e-3)
    np.testing.assert_allclose(srgb_to_lab([1.0, 1.0, 1.0]), [100.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(srgb_to_lab([0.0, 0.0, 0.0]), [0.0, 0.0, 0.0], atol=1e-9)
    # Sharma, Wu & Dalal (2005) CIEDE2000 test pairs
    pairs = [
        ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
        ((50.0, -1.3802, -84.2814), (50.0, 0.0, -82.7485), 1.0000),
        ((50.0, 2.4900, -0.0010), (50.0, -2.4900, 0.0009), 7.1792),
        ((50.0, 2.5000, 0.0000), (73.0, 25.0, -18.0), 27.1492),
        ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
        ((22.7233, 20.0904, -46.6940), (23.0331, 14.9730, -42.5619), 2.0373),
        ((90.9257, -0.5406, -0.9208), (88.6381, -0.8985, -0.7239), 1.5381),
        ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082),
    ]
    for p, q, want in pairs:
        assert delta_e2000(p, q) == pytest.approx(want, abs=1e-4)
        assert delta_e2000(q, p) == pytest.approx(want, abs=1e-4)


def test_thirty_distinct_colours_most_distinct_first():
    assert len(PALETTE) == 30 and len(set(PALETTE)) == 30
    lab = lab_of(PALETTE)
    assert pairwise_min(lab) > 12.0
    assert pairwise_min(lab[:12]) > 18.0
    assert pairwise_min(lab[:8]) > 28.0


def test_no_grey_and_no_stain_colour():
    lab = lab_of(PALETTE)
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    assert chroma.min() >= 40.0
    greys = srgb_to_lab(np.repeat(np.linspace(0.1, 0.97, 40)[:, None], 3, axis=1))
    assert delta_e2000(lab[:, None], greys[None]).min() > 20.0
    stains = lab_of(STAIN_REFERENCES.values())
    assert delta_e2000(lab[:, None], stains[None]).min() > 20.0
    # and nothing in the eosin hue band (CIELAB hue of #D35FA0 is ~346 deg)
    hue = np.degrees(np.arctan2(lab[:, 2], lab[:, 1])) % 360
    assert not ((hue > 325) & (hue < 360)).any()


def test_category_colors_is_deterministic_and_general():
    names = [f"type {i}" for i in range(30)]
    a = category_colors(names)
    assert a == category_colors(list(names))
    assert list(a) == names
    rgb = np.array([c[:3] for c in a.values()])
    assert len({tuple(c) for c in rgb}) == 30
    assert all(c[3] == 1.0 for c in a.values())
    np.testing.assert_allclose(rgb[0], hex_to_rgb(PALETTE[0]))
    # "(none)" takes its own colour and no palette slot; ints become strings
    b = category_colors([NONE_NAME, 0, 1, 2])
    assert list(b) == [NONE_NAME, "0", "1", "2"]
    assert b[NONE_NAME] == NONE_COLOR and NONE_COLOR[3] < 0.5
    assert b["0"] == a["type 0"] and b["2"] == a["type 2"]
    # past 30 names the palette repeats instead of failing
    many = category_colors(range(35))
    assert many["30"] == many["0"] and len(many) == 35
