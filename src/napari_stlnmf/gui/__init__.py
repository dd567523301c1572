"""napari side: layer building, region painting sync, result rendering, widgets.

Modules that import napari or Qt do so themselves; :mod:`.layers` and :mod:`.raster` are
plain numpy so readers and sample providers stay cheap to import.
"""
