"""napari-stlnmf: cell-type deconvolution of spatial transcriptomics with STL NMF.

Importing this package never imports napari or Qt; the napari entry points live in
``_reader``, ``_writer``, ``_sample_data`` and ``_widget``.
"""

from ._version import __version__
from .core import NNLS, STLNMF, PlainKL, Reference, SimulationSettings, ZeroCountSpotsWarning
from .io.model_file import load_model, save_model

__all__ = [
    "STLNMF",
    "PlainKL",
    "NNLS",
    "Reference",
    "SimulationSettings",
    "ZeroCountSpotsWarning",
    "save_model",
    "load_model",
    "__version__",
]
