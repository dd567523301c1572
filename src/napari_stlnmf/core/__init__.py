"""Pure-compute core of napari-stlnmf: numpy, scipy and torch only (no files, no Qt)."""

from .estimator import NNLS, STLNMF, PlainKL, ZeroCountSpotsWarning
from .graph import SpotGraph, build_graph, spot_pitch
from .model import NetConfig, STLNMFNet
from .reference import Reference
from .simulate import SimulationSettings, simulate_slide
from .train import TrainingCancelled, TrainingProgress

__all__ = [
    "STLNMF",
    "PlainKL",
    "NNLS",
    "ZeroCountSpotsWarning",
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
