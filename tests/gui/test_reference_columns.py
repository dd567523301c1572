"""The dock's label-key choices: only columns that can hold cell types, and a spatial slide
picked as the reference refused with the same message as the CLI gives."""

import pytest

from napari_stlnmf.gui.workflow import reference_columns
from napari_stlnmf.io.errors import InputError
from tests.io.test_reference import _adata, _spatial_slide


def test_label_choices_leave_out_scores_and_ids(tmp_path):
    a = _adata()
    a.obs["score"] = [0.1 * i for i in range(a.n_obs)]
    path = tmp_path / "ref.h5ad"
    a.write_h5ad(path)
    # "batch" has one value and "score" is decimal: neither can hold cell types
    assert reference_columns(path) == ["cell_type"]


def test_a_spatial_slide_is_refused_before_any_click(tmp_path):
    with pytest.raises(InputError, match="looks like a spatial slide"):
        reference_columns(_spatial_slide(tmp_path))
