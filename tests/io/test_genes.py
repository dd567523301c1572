import numpy as np
import pandas as pd
import pytest

from napari_stlnmf.io.errors import InputError
from napari_stlnmf.io.genes import match_genes

SYMBOLS = [f"Gene{i}" for i in range(40)]
IDS = [f"ENSMUSG{i:011d}" for i in range(40)]


def test_symbols_match_case_insensitively_in_reference_order():
    spatial = pd.DataFrame(index=[s.upper() for s in SYMBOLS[::-1]])
    reference = pd.DataFrame(index=[s.lower() for s in SYMBOLS[10:]] + ["OnlyInRef"])
    m = match_genes(spatial, reference)
    assert m.naming == "symbol"
    assert m.n_shared == 30
    assert m.genes == [s.lower() for s in SYMBOLS[10:]]
    # spatial index points at the same genes, reversed order on the slide
    assert list(spatial.index[m.spatial_index]) == [s.upper() for s in SYMBOLS[10:]]
    assert np.array_equal(m.reference_index, np.arange(30))
    assert m.fraction_of_reference == pytest.approx(30 / 31)
    assert "30 shared genes by symbol" in m.summary()


def test_ensembl_ids_win_when_they_overlap_more_and_versions_are_ignored():
    # the slide has IDs in var_names and symbols in a column; symbols were mangled
    spatial = pd.DataFrame(
        {"gene_symbols": [f"X{i}" for i in range(40)]}, index=[f"{g}.3" for g in IDS]
    )
    reference = pd.DataFrame({"gene_ids": IDS[:25]}, index=SYMBOLS[:25])
    m = match_genes(spatial, reference)
    assert m.naming == "ensembl"
    assert m.n_shared == 25
    assert m.reference_naming == "gene_ids"
    assert m.spatial_naming == "var_names"
    assert np.array_equal(m.spatial_index, np.arange(25))


def test_symbol_column_used_when_var_names_are_ids():
    spatial = pd.DataFrame({"gene_symbols": SYMBOLS}, index=IDS)
    reference = pd.DataFrame(index=SYMBOLS[5:35])
    m = match_genes(spatial, reference)
    assert (m.naming, m.spatial_naming, m.n_shared) == ("symbol", "gene_symbols", 30)


def test_low_overlap_error_names_both_files_and_examples():
    spatial = pd.DataFrame(index=SYMBOLS)
    reference = pd.DataFrame(index=[f"Other{i}" for i in range(50)] + SYMBOLS[:3])
    with pytest.raises(InputError) as e:
        match_genes(spatial, reference, spatial_name="slide.h5ad", reference_name="ref.h5ad")
    msg = str(e.value)
    assert "only 3 genes shared" in msg
    assert "slide.h5ad" in msg and "ref.h5ad" in msg
    assert "Gene0" in msg and "Other0" in msg
    assert "\n" not in msg


def test_no_overlap_at_all_is_an_error():
    with pytest.raises(InputError, match="only 0 genes"):
        match_genes(pd.DataFrame(index=SYMBOLS), pd.DataFrame(index=IDS))
