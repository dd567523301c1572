"""npe2 sample-data provider: a simulated spatial-transcriptomics slide.

This module must stay importable without napari/Qt: everything heavy is imported
lazily inside :func:`make_simulated_slide`.
"""

from __future__ import annotations

from typing import Any


def make_simulated_slide() -> list[tuple[Any, dict[str, Any], str]]:
    """Return a napari Points layer of simulated spots coloured by cell-type proportion.

    Features hold the simulated region label and one column per cell type; the layer
    is initially coloured by the first cell type.
    """
    import numpy as np
    import pandas as pd

    from napari_stlnmf.core.graph import spot_pitch
    from napari_stlnmf.core.simulate import simulate_demo_slide

    sim = simulate_demo_slide()
    coords = np.asarray(sim["coords"], dtype=float)
    proportions = np.asarray(sim["proportions"], dtype=float)
    cell_types = [str(c) for c in sim["cell_types"]]
    regions = np.asarray(sim["regions"]).astype(int)

    features = pd.DataFrame({"region": regions})
    for j, name in enumerate(cell_types):
        features[name] = proportions[:, j]

    d = spot_pitch(coords)
    kwargs: dict[str, Any] = {
        "name": "spots (simulated)",
        "size": float(d),
        "features": features,
        "face_color": cell_types[0],
        "face_colormap": "viridis",
        "face_contrast_limits": (0.0, 1.0),
        "border_width": 0,
    }
    # napari is (row, col) = (y, x)
    return [(coords[:, ::-1].copy(), kwargs, "points")]


def _sample_layers(name: str) -> list[tuple[Any, dict[str, Any], str]]:
    from napari_stlnmf.gui.layers import slide_layers, truth_layer
    from napari_stlnmf.io.samples import load_sample

    sample = load_sample(name)
    regions = None
    if sample.regions is not None:
        regions = sample.regions.reindex(sample.spatial.obs_names).fillna(0).to_numpy()
    layers = slide_layers(sample.spatial, regions=regions, name=f"{name} spots")
    if sample.truth is not None:
        layers.append(truth_layer(sample.truth, sample.spatial, name=f"{name} ground truth"))
    return layers


#: Shown when the mouse_brain sample opens: its counts are not this section's measurement.
MOUSE_BRAIN_NOTICE = (
    "mouse_brain sample: real H&E and spot layout; the counts are composed from real "
    "hippocampus cells placed by an anatomical drawing of this section (exact ground truth "
    "in the hidden 'ground truth' layer), not measured on it"
)


def make_mouse_brain() -> list[tuple[Any, dict[str, Any], str]]:
    """Real CytAssist mouse-brain H&E (hires) with its real spot layout; counts composed
    from real hippocampus cells, ground truth as a hidden layer."""
    layers = _sample_layers("mouse_brain")
    try:
        from napari.utils.notifications import show_info

        show_info(MOUSE_BRAIN_NOTICE)
    except ImportError:  # layer data asked for without napari: nothing to notify
        pass
    return layers


def make_hippocampus() -> list[tuple[Any, dict[str, Any], str]]:
    """Real Visium hippocampus spots (no image, no ground truth)."""
    return _sample_layers("hippocampus")
