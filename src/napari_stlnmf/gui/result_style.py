"""How result maps are drawn over the H&E (issue 13, "the maps hide the tissue"): their
opacity, the faded colormap, the contrast-limit scalings, and the categorical colours of
the dominant-type layers.

- result layers are drawn at :data:`RESULT_OPACITY` (dominant-type layers at
  :data:`DOMINANT_OPACITY`), and a re-run keeps what the user set (:func:`opacity_of`);
- the colormap (viridis by default) fades out at its low end (:func:`faded_colormap`),
  so spots where a type is absent show the stain and only where the type is show colour;
- the contrast limits of every per-type layer follow a scaling (:data:`SCALINGS`),
  by default :data:`DEFAULT_SCALING` ("robust p1-p99") so rare types use the whole bar.
"""

from __future__ import annotations

import numpy as np

from ..io.export import dominant_index
from .meta import Role, meta_of, result_layers
from .palette import NONE_NAME, category_colors

__all__ = [
    "DEFAULT_SCALING",
    "DOMINANT_OPACITY",
    "FADE_ALPHA",
    "FADE_RANGE",
    "MIN_SPAN",
    "RESULT_OPACITY",
    "SCALINGS",
    "check_scaling",
    "dominant_codes",
    "dominant_colors",
    "faded_colormap",
    "opacity_of",
    "scaling_of",
    "set_result_opacity",
    "type_limits",
]

#: Opacity of new result layers. At 0.7 the nuclei-dense bands of the H&E (pyramidal
#: layer, dentate gyrus, ventricle walls) still show through a fully coloured spot, while
#: 70 % of the colour keeps viridis readable (a value's hue shifts by less than one step
#: of the colour bar over pink stain). Users change it in the legend dock.
RESULT_OPACITY = 0.7

#: Opacity of new dominant-type layers. A categorical colour must still match its legend
#: swatch: blended at 0.7 over eosin pink, 5 of the 30 palette colours come out closer
#: (CIEDE2000) to another type's swatch than to their own; at 0.9 none does and the
#: largest shift is 4 (the palette's closest pair is 12.6 apart).
DOMINANT_OPACITY = 0.9

#: Contrast-limit scalings: key -> label shown in the legend.
SCALINGS: dict[str, str] = {
    "linear": "linear 0–1",
    "per_type": "per type 0–max",
    "robust": "robust p1–p99",
}

#: The default scaling. A pathologist reads a per-type map for *where* a type is; with
#: fixed [0, 1] limits a rare type (CA3 peaking at 0.11) is one dark colour everywhere.
#: Per type 0-max fixes that only when the maximum is typical: on the bundled mouse brain
#: the maxima are set by a few spots (Ependymal: max 0.82, 99th percentile 0.12, so 99 % of
#: the spots would sit in the bottom 15 % of the bar). p1-p99 spreads the bulk of the
#: spots over the whole bar, the top 1 % share the brightest colour, and p1 is 0 for any
#: type absent from 1 % of the spots, so "dark" still means "absent".
DEFAULT_SCALING = "robust"

#: Smallest upper-minus-lower contrast limit of the per-type and robust scalings: a type
#: whose proportions all stay below 5 % (noise for a spot of a few cells) is not stretched
#: into bright colours.
MIN_SPAN = 0.05

#: Low end of :func:`faded_colormap`: alpha at the lowest value, and the fraction of the
#: range over which it rises to 1.
FADE_ALPHA = 0.25
FADE_RANGE = 0.25


def faded_colormap(name: str = "viridis"):
    """The napari colormap ``name`` with a transparent low end.

    Alpha rises linearly from :data:`FADE_ALPHA` at the lower contrast limit to 1 at
    :data:`FADE_RANGE` of the range; the colours are unchanged. Over H&E this leaves the
    tissue visible where a type is absent instead of painting it dark blue.

    Parameters
    ----------
    name : str
        Any napari colormap name.

    Returns
    -------
    napari.utils.Colormap
        Named ``"<name> faded"`` (registered with napari, so layers can use the name).
    """
    from napari.utils.colormaps import Colormap, ensure_colormap

    base = ensure_colormap(name)
    x = np.linspace(0.0, 1.0, 256)
    rgba = np.asarray(base.map(x), dtype=np.float64).copy()
    rgba[:, 3] *= np.clip(FADE_ALPHA + (1 - FADE_ALPHA) * x / FADE_RANGE, 0.0, 1.0)
    cmap = Colormap(colors=rgba, controls=x, name=f"{base.name} faded")
    ensure_colormap(cmap)  # registers the name; napari keeps the first of a name
    return cmap


def type_limits(values: np.ndarray, scaling: str = DEFAULT_SCALING) -> list[tuple[float, float]]:
    """Contrast limits of each type (column) of a proportions array.

    Parameters
    ----------
    values : ndarray (n_spots, n_types)
        Proportions; NaN rows are ignored.
    scaling : {"linear", "per_type", "robust"}
        ``linear``: (0, 1) for every type; ``per_type``: (0, max); ``robust``:
        (1st percentile, 99th percentile). The last two keep the upper limit at least
        :data:`MIN_SPAN` above the lower one.

    Returns
    -------
    list of (float, float)
    """
    check_scaling(scaling)
    v = np.asarray(values, dtype=np.float64)
    out = []
    for j in range(v.shape[1]):
        col = v[:, j][np.isfinite(v[:, j])]
        if scaling == "linear" or col.size == 0:
            out.append((0.0, 1.0))
            continue
        if scaling == "per_type":
            lo, hi = 0.0, float(col.max())
        else:
            lo, hi = (float(q) for q in np.percentile(col, [1.0, 99.0]))
        out.append((lo, max(hi, lo + MIN_SPAN)))
    return out


def check_scaling(scaling: str) -> None:
    """``ValueError`` unless ``scaling`` is a key of :data:`SCALINGS`."""
    if scaling not in SCALINGS:
        raise ValueError(f"unknown scaling {scaling!r}; one of {list(SCALINGS)}")


def scaling_of(viewer, slide: str | None) -> str | None:
    """The scaling the user left on this slide's result layers (None if none has one)."""
    for layer in result_layers(viewer, slide):
        s = meta_of(layer).get("scaling")
        if s in SCALINGS:
            return s
    return None


def opacity_of(viewer, slide: str, roles: tuple[Role, ...], default: float) -> float:
    """The opacity the user left on this slide's result layers of ``roles`` (``default``
    if there are none), so a re-run keeps it."""
    for role in roles:
        found = result_layers(viewer, slide, role)
        if found:
            return float(found[0].opacity)
    return default


def set_result_opacity(viewer, opacity: float, slide: str | None = None) -> None:
    """Opacity of every result layer of ``slide`` (all slides if None), raster included."""
    opacity = float(np.clip(opacity, 0.0, 1.0))
    for layer in result_layers(viewer, slide):
        layer.opacity = opacity


def dominant_codes(values: np.ndarray) -> np.ndarray:
    """Per spot, the position of its dominant type in :func:`dominant_colors` (and in a
    dominant-type Labels layer): 1 + :func:`~napari_stlnmf.io.export.dominant_index`, so
    0 ("(none)") for rows with a NaN."""
    return (dominant_index(values) + 1).astype(np.int32)


def dominant_colors(cell_types: list[str]) -> dict[str, tuple[float, float, float, float]]:
    """Colours of a dominant-type layer: the "(none)" colour first, then one palette colour
    per type (the legend draws one swatch per entry)."""
    return category_colors([NONE_NAME, *cell_types])
