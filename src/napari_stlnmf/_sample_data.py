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
