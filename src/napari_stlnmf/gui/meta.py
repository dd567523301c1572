"""The schema of the plugin's layer metadata: what ``layer.metadata["stlnmf"]`` holds for
each kind of layer, and the accessors every GUI module uses to read it.

Layers are tagged with a :class:`Kind` (and result layers with a :class:`Role`); widgets
find their layers again by these tags, never by name. The dicts stay plain: strings
(``Kind``/``Role`` are ``StrEnum``, so they compare equal to and serialise as their
values), numbers, lists and, on spots layers only, the slide itself (see
:class:`SpotsMeta`). Live objects (Qt timers, links between layers, the raster arrays of a
large result) are kept beside the layer in ``WeakKeyDictionary`` registries
(:mod:`.regions`, :mod:`.results_raster`), not in its metadata.

Pure Python: importing this module loads neither napari nor Qt (the npe2 writer uses it).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any, NotRequired, TypedDict

__all__ = [
    "spots_layer_named",
    "META",
    "Kind",
    "Role",
    "PER_TYPE_ROLES",
    "DOMINANT_ROLES",
    "SpotsMeta",
    "ImageMeta",
    "RegionsMeta",
    "ResultMeta",
    "TruthMeta",
    "meta_of",
    "meta_in",
    "kind_of",
    "role_of",
    "is_kind",
    "is_spots",
    "is_result",
    "spots_meta",
    "result_meta",
    "result_layers",
    "unproxied",
]

#: Key of the plugin's dict in ``layer.metadata``.
META = "stlnmf"


class Kind(StrEnum):
    """What a layer of the plugin shows."""

    SPOTS = "spots"  #: a slide's spots (Points, or a raster Image above LARGE_SLIDE_SPOTS)
    IMAGE = "image"  #: a slide's histology image
    REGIONS = "regions"  #: the Regions Labels layer painted for a spots layer
    RESULT = "result"  #: a deconvolution result layer (see :class:`Role`)
    TRUTH = "truth"  #: known proportions of a sample (hidden Points layer)


class Role(StrEnum):
    """Which part of a result a result layer shows."""

    PROPORTION = "proportion"  #: one cell type's proportion (Points)
    DOMINANT = "dominant"  #: the dominant type per spot (Points)
    RASTER = "raster"  #: the proportions of a large slide, one type at a time (Image)
    RASTER_DOMINANT = "raster_dominant"  #: the dominant type of a large slide (Labels)
    INTERVAL_WIDTH = "interval_width"  #: width of one type's 90 % intervals (Points)


#: Roles drawn with a colour bar (one cell type's proportion).
PER_TYPE_ROLES = (Role.PROPORTION, Role.RASTER)
#: Roles drawn with categorical colours (one per type).
DOMINANT_ROLES = (Role.DOMINANT, Role.RASTER_DOMINANT)


class SpotsMeta(TypedDict):
    """A slide's spots layer (:func:`~napari_stlnmf.gui.layers.spots_info`).

    ``adata`` is the slide itself (napari-spatialdata keeps the AnnData in layer metadata
    too): the dock deconvolves from the layer. ``coords_xy`` and ``features`` (barcode,
    total_counts, region, and after a run the proportions) are kept here because a raster
    spots layer (a large slide) has no Points ``features``; for Points they mirror
    ``layer.features``.
    """

    kind: Kind
    adata: Any
    barcodes: list[str]
    coords_xy: Any  # ndarray (n_spots, 2), full-resolution px
    spot_diameter: float
    pitch: float
    library_id: str
    features: NotRequired[Any]  # DataFrame, one row per spot (set by spots_layer)


class ImageMeta(TypedDict):
    kind: Kind
    image: str  # hires, lowres or fullres
    scale_from_fullres: float


class RegionsMeta(TypedDict, total=False):
    kind: Kind
    spots_name: str
    majority: bool  # region = majority label over the spot disk (else: under the centre)


class ResultMeta(TypedDict, total=False):
    """A result layer. Every role has ``kind``, ``role``, ``slide`` (the name of the spots
    layer it belongs to) and ``cell_types``; the others depend on the role."""

    kind: Kind
    role: Role
    slide: str
    cell_types: list[str]
    cell_type: str  # PROPORTION: the type shown
    scaling: str  # PROPORTION, RASTER: key of results.SCALINGS
    colors: dict[str, tuple[float, float, float, float]]  # DOMINANT*: "(none)" then types
    limits: list[tuple[float, float]]  # RASTER: contrast limits per type
    current: str  # RASTER, INTERVAL_WIDTH: the type shown
    widths: object  # INTERVAL_WIDTH: (n_spots, n_types) array of interval widths
    q05: object  # PROPORTION: (n_spots, n_types) lower bounds of the 90 % intervals
    q95: object  # PROPORTION: (n_spots, n_types) upper bounds


class TruthMeta(TypedDict):
    kind: Kind
    cell_types: list[str]


def unproxied(obj):
    """The napari object itself behind a ``PublicOnlyProxy``.

    napari hands plugin widgets a proxy of the viewer, and every layer read through it
    (``viewer.add_labels(...)``, ``viewer.layers[name]``, ``selection.active``) is a new,
    short-lived proxy: a weak reference to it, or a ``WeakKeyDictionary`` entry keyed by
    it, dies with that proxy. Registries keyed by layer or viewer use this object instead.
    ``__wrapped__`` is the proxy's public way to its target (napari's own code uses it).
    """
    return getattr(obj, "__wrapped__", obj)


def meta_in(attributes: dict) -> dict:
    """The plugin's metadata in a layer-data ``attributes`` dict (``{}`` if none)."""
    return (attributes.get("metadata") or {}).get(META) or {}


def meta_of(layer) -> dict:
    """The plugin's metadata of ``layer`` (``{}`` for None or a layer that is not ours).

    The dict itself, not a copy: writing to it changes the layer's metadata.
    """
    metadata = getattr(layer, "metadata", None)
    if not metadata:
        return {}
    return metadata.get(META) or {}


def _member(enum: type[StrEnum], value):
    try:
        return enum(value)
    except ValueError:
        return None


def kind_of(layer) -> Kind | None:
    """The :class:`Kind` of a plugin layer, None for any other layer (or None)."""
    return _member(Kind, meta_of(layer).get("kind"))


def role_of(layer) -> Role | None:
    """The :class:`Role` of a result layer, None for any other layer."""
    if kind_of(layer) is not Kind.RESULT:
        return None
    return _member(Role, meta_of(layer).get("role"))


def is_kind(layer, kind: Kind) -> bool:
    return kind_of(layer) is kind


def is_spots(layer) -> bool:
    """True for a slide's spots layer made by this plugin."""
    return kind_of(layer) is Kind.SPOTS


def spots_layer_named(viewer, slide: str):
    """The spots layer called ``slide`` (results name their slide so), or None."""
    for layer in viewer.layers:
        if is_spots(layer) and layer.name == slide:
            return layer
    return None


def is_result(layer, roles: Iterable[Role] | Role | None = None) -> bool:
    """True for a result layer (of one of ``roles``, when given)."""
    role = role_of(layer)
    if role is None:
        return False
    if roles is None:
        return True
    return role == roles if isinstance(roles, Role) else role in tuple(roles)


def spots_meta(layer) -> SpotsMeta:
    """The metadata of a spots layer; ``ValueError`` for any other layer."""
    if not is_spots(layer):
        name = getattr(layer, "name", None)
        raise ValueError(f"layer {name!r} is not a spots layer of napari-stlnmf")
    return meta_of(layer)  # type: ignore[return-value]


def result_meta(layer) -> ResultMeta:
    """The metadata of a result layer; ``ValueError`` for any other layer."""
    if role_of(layer) is None:
        name = getattr(layer, "name", None)
        raise ValueError(f"layer {name!r} is not a result layer of napari-stlnmf")
    return meta_of(layer)  # type: ignore[return-value]


def result_layers(viewer, slide: str | None = None, role: Role | str | None = None) -> list:
    """Result layers of ``slide`` (any slide if None), optionally of one ``role``
    (``proportion``, ``dominant``, ``raster``, ``raster_dominant``), in layer order."""
    out = []
    for layer in viewer.layers:
        r = role_of(layer)
        if r is None or (role is not None and r != role):
            continue
        if slide is not None and meta_of(layer).get("slide") != slide:
            continue
        out.append(layer)
    return out
