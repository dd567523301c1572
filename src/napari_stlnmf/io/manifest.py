"""A cohort manifest: one CSV row per slide (path, optional regions, optional name).

``stlnmf batch`` and :func:`napari_stlnmf.cohort.run_cohort` read it. The whole file is
checked before any slide is touched: a manifest that cannot be read, has no ``path``
column, or gives two slides the same name is the user's error (:class:`InputError`). A
slide whose file is missing or unreadable is not: it fails alone when its turn comes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import InputError, one_line

__all__ = ["SlideEntry", "read_manifest", "slide_name"]

#: Column names accepted for each field (first match wins, case-insensitive).
_COLUMNS = {
    "path": ("path", "spatial", "slide"),
    "regions": ("regions", "region", "regions_path"),
    "name": ("name", "slide_name", "sample", "sample_id"),
    "coords": ("coords",),
    "fullres_image": ("fullres_image", "fullres-image"),
}

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class SlideEntry:
    """One slide of a cohort.

    Attributes
    ----------
    name : str
        Unique within the cohort; the slide's output folder is ``slides/<name>``.
    path : Path
        The slide (anything ``stlnmf deconvolve --spatial`` reads), absolute.
    regions : Path or None
        Its regions (CSV or label image), absolute.
    row : int
        Line of the manifest (1 = the first row after the header), for messages.
    coords, fullres_image : Path or None
        ``--coords`` (a counts table's spot coordinates) and ``--fullres-image`` of the
        slide, when the manifest has those columns.
    """

    name: str
    path: Path
    regions: Path | None
    row: int
    coords: Path | None = None
    fullres_image: Path | None = None


def slide_name(path: str | os.PathLike) -> str:
    """A folder-safe slide name from its path: the file name without suffixes, or for a
    Space Ranger ``outs/`` folder the folder above it."""
    p = Path(path)
    if p.name in ("outs", "binned_outputs", "segmented_outputs") and p.parent.name:
        p = p.parent
    stem = p.name
    for suffix in (".gz", ".h5ad", ".csv", ".tsv", ".txt", ".zarr"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    return _safe(stem)


def _safe(name: str) -> str:
    name = _UNSAFE.sub("_", name.strip()).strip("._")
    return name


def read_manifest(path: str | os.PathLike) -> list[SlideEntry]:
    """Read and check a cohort manifest.

    Parameters
    ----------
    path : path to a ``.csv`` (or ``.tsv``) file with a header row. Columns: ``path``
        (the slide; also accepted: ``spatial``, ``slide``), optional ``regions``,
        optional ``name`` (also ``sample``, ``sample_id``), optional ``coords`` and
        ``fullres_image`` (the ``stlnmf deconvolve`` options of those names). Relative
        paths are relative to the manifest's folder. Empty cells mean "none"; lines
        starting with ``#`` are comments.

    Returns
    -------
    list of SlideEntry, in the file's order.

    Raises
    ------
    InputError
        The manifest is missing or unreadable, has no path column or no rows, or two
        slides end up with the same name (the message names the rows).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"manifest {p}: no such file")
    sep = "\t" if p.suffix.lower() in (".tsv", ".tab") else ","
    try:
        table = pd.read_csv(p, sep=sep, dtype=str, comment="#", skip_blank_lines=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as e:
        raise InputError(f"manifest {p}: not a readable CSV table ({one_line(e)})") from None
    cols = {c.strip().lower(): c for c in table.columns}
    found = {
        field: next((cols[c] for c in names if c in cols), None)
        for field, names in _COLUMNS.items()
    }
    if found["path"] is None:
        raise InputError(
            f"manifest {p}: no 'path' column (columns: {', '.join(map(str, table.columns))}); "
            "expected a header row with path[,regions][,name]"
        )
    if table.empty:
        raise InputError(f"manifest {p}: no slides (only a header)")
    base = p.resolve().parent
    entries: list[SlideEntry] = []
    for i, rec in enumerate(table.to_dict("records"), start=1):
        raw = _cell(rec.get(found["path"]))
        if raw is None:
            raise InputError(f"manifest {p}, row {i}: empty path")
        slide = _resolve(base, raw)
        regions = _cell(rec.get(found["regions"])) if found["regions"] else None
        given = _cell(rec.get(found["name"])) if found["name"] else None
        name = _safe(given) if given is not None else slide_name(slide)
        if not name or name in (".", ".."):
            raise InputError(
                f"manifest {p}, row {i}: no usable slide name from {given or raw!r}; "
                "give one in a 'name' column"
            )
        extra = {}
        for field in ("coords", "fullres_image"):
            value = _cell(rec.get(found[field])) if found[field] else None
            extra[field] = _resolve(base, value) if value else None
        entries.append(
            SlideEntry(name, slide, _resolve(base, regions) if regions else None, i, **extra)
        )
    seen: dict[str, int] = {}
    for e in entries:
        if e.name in seen:
            raise InputError(
                f"manifest {p}: rows {seen[e.name]} and {e.row} are both named {e.name!r}; "
                "names must be unique (add or fix a 'name' column)"
            )
        seen[e.name] = e.row
    return entries


def _cell(value) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    return text or None


def _resolve(base: Path, text: str) -> Path:
    q = Path(os.path.expanduser(text))
    return q if q.is_absolute() else base / q
