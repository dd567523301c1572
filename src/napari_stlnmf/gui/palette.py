"""Categorical colours that stay readable over an H&E slide.

The dominant-type layer (and a region colouring) needs one colour per category drawn over
a pink/purple H&E stain. matplotlib's tab20 gave a grey (too close to the "(none)"
colour) and pinks that vanish into eosin, so :data:`PALETTE` is a fixed list chosen for
this purpose. Pure numpy; no Qt, no napari.

How :data:`PALETTE` was chosen (once, offline; the steps below reproduce it):

1. candidates: the sRGB cube on a 26-step grid, converted to CIELAB (D65);
2. kept: chroma C*ab >= 40 (no greys, no washed-out pastels), lightness 35 <= L* <= 82
   (visible on the pale glass and on dark nuclei), a hue not in the pink-magenta-purple
   band of the stains (CIELAB hue 290-360 deg and 0-10 deg unless C* >= 90: eosin sits at
   ~345 deg, hematoxylin at ~295-305 deg), and CIEDE2000 >= 20 from seven stain
   references (:data:`STAIN_REFERENCES`) and >= 20 from the greys #333333-#F2F2F2;
3. 30 colours by greedy farthest-point selection in CIEDE2000 (starting from the
   candidate farthest from the stains), then 400 rounds of replacing one member of the
   closest pair by the candidate farthest from the others, kept when the smallest
   pairwise distance did not shrink;
4. the order: greedy farthest-point again, so the first k colours are as far apart as
   possible for every k (a slide with 8 types gets the 8 most distinct colours).

Result (tested in tests/gui/test_palette.py): smallest pairwise CIEDE2000 12.6 over all 30
colours, 18.6 over the first 12, 28.9 over the first 8; >= 20 from the stains and greys.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = [
    "PALETTE",
    "NONE_COLOR",
    "NONE_NAME",
    "STAIN_REFERENCES",
    "category_colors",
    "hex_to_rgb",
    "srgb_to_lab",
    "delta_e2000",
]

#: 30 categorical colours, most distinct first (see the module docstring).
PALETTE: tuple[str, ...] = (
    "#00EB00", "#AD0033", "#00ADFF", "#FFA333", "#3D5C14", "#00A38F",
    "#8F5200", "#FF7070", "#99A300", "#00991F", "#EB5C00", "#70E0AD",
    "#7A8FEB", "#007A52", "#A37A0A", "#B8330A", "#00D6FF", "#D6CC7A",
    "#FFA37A", "#706614", "#F50033", "#C28552", "#70853D", "#CCA300",
    "#B86652", "#ADD600", "#00D6CC", "#0085C2", "#8FB866", "#00B870",
)  # fmt: skip

#: The category of spots without a value (e.g. no dominant type): a faint white veil, so
#: such spots read as "nothing here" and never as one more category.
NONE_NAME = "(none)"
NONE_COLOR: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 0.25)

#: Stain colours the palette keeps away from: eosin (light, mid, deep), the pink of
#: tissue, hematoxylin (dark, light, blue-purple).
STAIN_REFERENCES: dict[str, str] = {
    "eosin light": "#E8A0C8",
    "eosin": "#D35FA0",
    "eosin deep": "#C0508C",
    "tissue pink": "#F4C2DC",
    "hematoxylin": "#3C2F75",
    "hematoxylin light": "#6A5AA8",
    "hematoxylin blue": "#4A5396",
}


def hex_to_rgb(color: str) -> tuple[float, float, float]:
    """``"#RRGGBB"`` as three floats in [0, 1]."""
    h = color.lstrip("#")
    if len(h) != 6:
        raise ValueError(f"expected #RRGGBB, got {color!r}")
    return tuple(int(h[i : i + 2], 16) / 255.0 for i in (0, 2, 4))  # type: ignore[return-value]


def category_colors(names: Iterable) -> dict[str, tuple[float, float, float, float]]:
    """A distinct opaque RGBA colour per category, in the order given.

    Parameters
    ----------
    names : iterable
        Category names (cell types, region labels...); non-strings are converted with
        ``str`` (a region ``3`` becomes ``"3"``). :data:`NONE_NAME` gets
        :data:`NONE_COLOR` and takes no palette slot.

    Returns
    -------
    dict
        ``{str(name): (r, g, b, a)}`` with floats in [0, 1]. The i-th other name gets
        ``PALETTE[i]``; past 30 names the palette repeats (then names share colours), so
        the same list of names always gets the same colours.
    """
    out: dict[str, tuple[float, float, float, float]] = {}
    i = 0
    for name in names:
        key = str(name)
        if key in out:
            continue
        if key == NONE_NAME:
            out[key] = NONE_COLOR
            continue
        out[key] = (*hex_to_rgb(PALETTE[i % len(PALETTE)]), 1.0)
        i += 1
    return out


def srgb_to_lab(rgb) -> np.ndarray:
    """CIELAB (D65) of sRGB colours.

    Parameters
    ----------
    rgb : array-like (..., 3)
        sRGB in [0, 1].

    Returns
    -------
    ndarray (..., 3)
        L*, a*, b*.
    """
    c = np.asarray(rgb, dtype=np.float64)[..., :3]
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array(
        [
            [0.4124564, 0.3575761, 0.1804375],
            [0.2126729, 0.7151522, 0.0721750],
            [0.0193339, 0.1191920, 0.9503041],
        ]
    )
    # the white point is the matrix's own row sums, so white maps to exactly a* = b* = 0
    xyz = lin @ m.T / m.sum(1)
    eps, kappa = 216 / 24389, 24389 / 27
    f = np.where(xyz > eps, np.cbrt(xyz), (kappa * xyz + 16) / 116)
    return np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])],
        axis=-1,
    )


def delta_e2000(lab1, lab2) -> np.ndarray:
    """CIEDE2000 colour difference (Sharma, Wu & Dalal 2005), broadcasting.

    Parameters
    ----------
    lab1, lab2 : array-like (..., 3)
        CIELAB colours.

    Returns
    -------
    ndarray
        Distances; about 2 is just noticeable side by side, above 10 clearly different.
    """
    lab1 = np.asarray(lab1, dtype=np.float64)
    lab2 = np.asarray(lab2, dtype=np.float64)
    L1, a1, b1 = np.moveaxis(lab1, -1, 0)
    L2, a2, b2 = np.moveaxis(lab2, -1, 0)
    c_mean = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_mean**7 / (c_mean**7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    achromatic = c1p * c2p == 0
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(achromatic, 0.0, dh)
    d_l = L2 - L1
    d_c = c2p - c1p
    d_h = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh) / 2)
    l_mean = (L1 + L2) / 2
    cp_mean = (c1p + c2p) / 2
    h_sum = h1p + h2p
    h_mean = np.where(
        np.abs(h1p - h2p) > 180,
        np.where(h_sum < 360, (h_sum + 360) / 2, (h_sum - 360) / 2),
        h_sum / 2,
    )
    h_mean = np.where(achromatic, h_sum, h_mean)
    t = (
        1
        - 0.17 * np.cos(np.radians(h_mean - 30))
        + 0.24 * np.cos(np.radians(2 * h_mean))
        + 0.32 * np.cos(np.radians(3 * h_mean + 6))
        - 0.20 * np.cos(np.radians(4 * h_mean - 63))
    )
    d_theta = 30 * np.exp(-(((h_mean - 275) / 25) ** 2))
    r_c = 2 * np.sqrt(cp_mean**7 / (cp_mean**7 + 25.0**7))
    s_l = 1 + 0.015 * (l_mean - 50) ** 2 / np.sqrt(20 + (l_mean - 50) ** 2)
    s_c = 1 + 0.045 * cp_mean
    s_h = 1 + 0.015 * cp_mean * t
    r_t = -np.sin(np.radians(2 * d_theta)) * r_c
    return np.sqrt(
        (d_l / s_l) ** 2 + (d_c / s_c) ** 2 + (d_h / s_h) ** 2 + r_t * (d_c / s_c) * (d_h / s_h)
    )
