"""Opening the STL NMF dock widget on the bundled sample, shared by GUI and fault tests."""

from napari_stlnmf.gui.dock import StlnmfWidget


def sample_widget(make_napari_viewer, epochs: int, n_layers: int, show: bool = False):
    """A viewer with the mouse_brain sample open and the dock widget set to tiny settings
    (``show``: a visible window, for tests of the widget's geometry)."""
    viewer = make_napari_viewer(show=show)
    viewer.open_sample("napari-stlnmf", "mouse_brain")
    widget = StlnmfWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.epochs.value = epochs
    widget.layers_n.value = n_layers
    return viewer, widget


def wait_done(qtbot, widget, timeout=180_000):
    """Wait until the widget's run and the drawing of its result layers are over."""
    qtbot.waitUntil(lambda: not widget.busy, timeout=timeout)
