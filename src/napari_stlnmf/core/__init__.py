"""Pure-compute core of napari-stlnmf: numpy, scipy and torch only (no files, no Qt)."""

from .base import ZeroCountSpotsWarning
from .baselines import NNLS, PlainKL
from .estimator import STLNMF
from .graph import SpotGraph, build_graph, spot_pitch
from .network import NetConfig, STLNMFNet
from .reference import Reference
from .simulate import SimulationSettings, simulate_slide
from .train import TrainingCancelled, TrainingProgress
from .validation import InvalidParameterError

__all__ = [
    "STLNMF",
    "PlainKL",
    "NNLS",
    "ZeroCountSpotsWarning",
    "InvalidParameterError",
    "Reference",
    "SpotGraph",
    "build_graph",
    "spot_pitch",
    "NetConfig",
    "STLNMFNet",
    "SimulationSettings",
    "simulate_slide",
    "TrainingCancelled",
    "TrainingProgress",
]
