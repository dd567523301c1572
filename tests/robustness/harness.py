"""Machinery of the bad-input suite: a registry of seeded case builders, the in-process
CLI runner and the checks every case must pass.

A case builder writes broken input under ``ctx.tmp`` with ``ctx.rng`` (seeded from the
case id, so each case is reproducible) and returns a :class:`Case`: the ``stlnmf``
arguments, what the error line must name (file or argument), a regex for the problem, and
optionally the same input through the Python API.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from napari_stlnmf.cli import main
from napari_stlnmf.io.errors import InputError
from napari_stlnmf.io.model_file import ModelFileError

#: What bad input raises through the API: InputError, of which ModelFileError is one.
API_ERRORS = InputError
assert issubclass(ModelFileError, InputError)


@dataclass
class Case:
    """One bad (or, with ``ok``, must-still-work) input.

    argv: arguments after the sub-command (``--out``, ``-q`` are added for deconvolve).
    needle: text (or texts) the one-line message must contain: a file name or argument.
    problem: regex (case-insensitive) the message must match: what is wrong.
    api: the same input through the Python API; must raise InputError/ModelFileError
        naming ``api_needle`` (default ``needle``), or succeed for an ``ok`` case.
    """

    argv: list
    needle: str | list[str] = ""
    problem: str = ""
    api: Callable[[], object] | None = None
    api_needle: str | list[str] | None = None
    command: str = "deconvolve"
    ok: bool = False
    out: Path | None = None  # --out for deconvolve (default: a fresh tmp/out)
    with_out: bool = True  # False: leave --out off (argparse must complain)


@dataclass
class Ctx:
    id: str
    k: int
    rng: np.random.Generator
    tmp: Path
    env: object
    monkeypatch: pytest.MonkeyPatch


class Cases:
    """Registry: ``@CASES("name")`` or ``@CASES("name", n=4)`` (ids ``name-0`` ...)."""

    def __init__(self):
        self.builders: dict[str, tuple[Callable[[Ctx], Case], int]] = {}

    def __call__(self, name: str, n: int | None = None):
        def deco(fn):
            ids = [name] if n is None else [f"{name}-{k}" for k in range(n)]
            for k, case_id in enumerate(ids):
                if case_id in self.builders:
                    raise ValueError(f"duplicated case id {case_id}")
                self.builders[case_id] = (fn, k)
            return fn

        return deco

    @property
    def ids(self) -> list[str]:
        return list(self.builders)

    def build(self, case_id: str, tmp: Path, env, monkeypatch) -> Case:
        fn, k = self.builders[case_id]
        rng = np.random.default_rng(zlib.crc32(case_id.encode()))
        work = tmp / "in"
        work.mkdir()
        return fn(Ctx(case_id, k, rng, work, env, monkeypatch))


def run_cli(argv: list, capsys) -> tuple[int, str, str]:
    """``main(argv)`` in-process; argparse errors (SystemExit) give their code too."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def _needles(n) -> list[str]:
    return [n] if isinstance(n, str) else list(n)


def _names_it(message: str, case: Case, needles) -> None:
    low = message.lower()
    for needle in _needles(needles):
        assert needle and needle.lower() in low, f"message does not name {needle!r}: {message}"
    assert re.search(case.problem, message, re.IGNORECASE), (
        f"message does not say /{case.problem}/: {message}"
    )


def check_case(case: Case, tmp: Path, capsys) -> None:
    """Run ``case`` through the CLI (and the API) and check the bad-input contract."""
    out = case.out or tmp / "out"
    before = out.read_bytes() if out.is_file() else None
    argv = [case.command, *case.argv]
    if case.command == "deconvolve":
        argv += (["--out", out] if case.with_out else []) + ["-q", "--no-figure"]
    elif case.command == "train":
        argv += ["-q"]
    code, stdout, err = run_cli(argv, capsys)
    if case.ok:
        assert code == 0, err
        if case.command == "deconvolve":
            assert (out / "proportions.csv").is_file()
    else:
        assert code == 2, f"exit code {code}, stderr: {err}"
        assert "Traceback" not in err, err
        lines = err.strip().splitlines()
        errors = [ln for ln in lines if ": error:" in ln]
        assert len(errors) == 1, f"expected one error line: {err}"
        line = errors[0]
        assert line.startswith("stlnmf: error: "), line
        stray = [ln for ln in lines if ln != line and not ln.startswith("stlnmf: warning:")]
        assert not stray, f"unexpected stderr lines: {stray}"
        assert stdout == "", stdout
        _names_it(line, case, case.needle)
        if before is not None:
            assert out.read_bytes() == before, f"--out file {out} was changed"
        left = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
        assert not left, f"output left in --out: {left}"
    tmps = [str(p) for p in tmp.rglob("*.tmp")]
    assert not tmps, f"temporary files left: {tmps}"

    if case.api is None:
        return
    if case.ok:
        case.api()
        return
    with pytest.raises(API_ERRORS) as e:
        case.api()
    message = str(e.value)
    assert "\n" not in message.strip(), message
    _names_it(message, case, case.needle if case.api_needle is None else case.api_needle)


def png_bomb_header(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
