"""npe2 widget entry points (thin: the widgets live in :mod:`napari_stlnmf.gui`)."""

from __future__ import annotations


def LegendWidget(napari_viewer):  # noqa: N802 (npe2 calls it like a class)
    """Colour bar / legend of the active cell-type layer, type switch, grid view."""
    from .gui.legend import LegendWidget as _Legend

    return _Legend(napari_viewer)


def RegionsWidget(napari_viewer):  # noqa: N802
    """Paint tissue regions for a slide; load / save them as a label image."""
    from .gui.regions_widget import RegionsWidget as _Regions

    return _Regions(napari_viewer)


def StlnmfWidget(napari_viewer):  # noqa: N802
    """The STL NMF workflow: layers + reference -> train -> deconvolve -> export."""
    from .gui.dock import StlnmfWidget as _Dock

    return _Dock(napari_viewer)
