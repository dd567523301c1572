"""``atomic_batch``: several atomic writes that appear together or not at all."""

import os
from pathlib import Path

import pytest

from napari_stlnmf.io.atomic import atomic_batch, atomic_write


def put(path: Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def test_all_files_appear_at_the_end_of_the_batch(tmp_path):
    (tmp_path / "a").write_text("old a")
    with atomic_batch():
        put(tmp_path / "a", "new a")
        put(tmp_path / "b", "new b")
        # nothing is visible before the batch ends; only the temporaries exist
        assert (tmp_path / "a").read_text() == "old a" and not (tmp_path / "b").exists()
        assert len(list(tmp_path.glob(".*.tmp"))) == 2
    assert (tmp_path / "a").read_text() == "new a" and (tmp_path / "b").read_text() == "new b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failure_anywhere_changes_nothing(tmp_path, error):
    (tmp_path / "a").write_text("old a")
    (tmp_path / "c").write_text("old c")

    def half(tmp):
        Path(tmp).write_text("hal")
        raise error

    with pytest.raises(type(error)), atomic_batch():
        put(tmp_path / "a", "new a")
        put(tmp_path / "b", "new b")
        atomic_write(tmp_path / "c", half)
    assert (tmp_path / "a").read_text() == "old a" and (tmp_path / "c").read_text() == "old c"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "c"]


def test_an_error_after_the_writes_also_changes_nothing(tmp_path):
    with pytest.raises(RuntimeError), atomic_batch():
        put(tmp_path / "a", "new a")
        raise RuntimeError("later step failed")
    assert list(tmp_path.iterdir()) == []


def test_nested_batches_join_the_outer_one(tmp_path):
    with pytest.raises(RuntimeError), atomic_batch():
        with atomic_batch():
            put(tmp_path / "a", "new a")
        assert not (tmp_path / "a").exists()
        raise RuntimeError("outer fails")
    assert list(tmp_path.iterdir()) == []


def test_batch_keeps_the_mode_of_replaced_files_and_works_again(tmp_path):
    (tmp_path / "a").write_text("old")
    os.chmod(tmp_path / "a", 0o640)
    with atomic_batch():
        put(tmp_path / "a", "new")
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o640
    put(tmp_path / "a", "outside a batch: at once")
    assert (tmp_path / "a").read_text() == "outside a batch: at once"
