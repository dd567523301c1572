"""napari side: layer building, region painting sync, result rendering, widgets.

- layer state: :mod:`.meta` (the schema of ``layer.metadata["stlnmf"]``: kinds, roles,
  accessors), :mod:`.layers` (a slide as layer data), :mod:`.raster`;
- regions: :mod:`.regions` (Labels layer <-> spots), :mod:`.regions_widget` (its dock);
- results: :mod:`.results` (public face; Points results), :mod:`.results_raster` (large
  slides), :mod:`.result_style` (opacity, colormap, scalings), :mod:`.grid`, and the
  :mod:`.legend` dock;
- the deconvolution dock: :mod:`.dock` (form and results display), :mod:`.dock_inputs`
  (slide, regions, reference), :mod:`.dock_files` (save, load, export), :mod:`.runner`
  (the background run), :mod:`.workflow` (Qt-free helpers).

Modules that import napari or Qt do so themselves; :mod:`.meta`, :mod:`.layers` and
:mod:`.raster` are plain Python/numpy so readers, writers and sample providers stay cheap
to import.
"""
