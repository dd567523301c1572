"""npe2 widget entry points: the dock widget classes, as napari's plugin template has them.

napari opens a widget contribution by reading the signature of the class's ``__init__``
and passing the viewer to the parameter named ``napari_viewer`` (or annotated with the
Viewer type). A plain factory function has no such ``__init__`` and gets no viewer, so the
manifest must name the classes themselves. This module (and Qt) is imported only when a
dock is opened; ``import napari_stlnmf`` never loads it.
"""

from __future__ import annotations

from .gui.dock import StlnmfWidget
from .gui.legend import LegendWidget
from .gui.regions_widget import RegionsWidget

__all__ = ["StlnmfWidget", "LegendWidget", "RegionsWidget"]
