"""Broken, tampered or mismatched model files (``--model``, ``stlnmf info``)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from napari_stlnmf.io import model_file
from napari_stlnmf.io.model_file import load_model
from napari_stlnmf.pipeline import prepare
from tests.robustness.harness import Case, Cases, check_case

CASES = Cases()


def _read(path):
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["stlnmf"])
    return load_file(str(path)), meta


def _save(path, tensors, meta=None, raw_meta=None):
    """Write a safetensors file; ``meta`` as JSON or ``raw_meta`` as is (no metadata when
    both are None)."""
    text = raw_meta if raw_meta is not None or meta is None else json.dumps(meta)
    save_file(tensors, str(path), metadata={"stlnmf": text} if text is not None else None)
    return path


def _model_case(ctx, path, problem, command="deconvolve") -> Case:
    if command == "info":
        argv = [path]
    else:
        argv = ["--spatial", ctx.env.slide, "--model", path]
    return Case(
        argv=argv,
        needle=path.name,
        problem=problem,
        api=lambda: load_model(path),
        command=command,
    )


def _copy(ctx, name="model.safetensors"):
    path = ctx.tmp / name
    path.write_bytes(ctx.env.model.read_bytes())
    return path


def _tamper(ctx, edit_meta=None, edit_tensors=None, problem="", command="deconvolve"):
    tensors, meta = _read(ctx.env.model)
    if edit_meta is not None:
        edit_meta(meta)
    if edit_tensors is not None:
        edit_tensors(tensors)
    path = _save(ctx.tmp / "model.safetensors", tensors, meta)
    return _model_case(ctx, path, problem, command)


# --- unreadable files -----------------------------------------------------------------
@CASES("model-random-bytes", n=3)
def _(ctx):
    path = ctx.tmp / "model.safetensors"
    path.write_bytes(ctx.rng.bytes(int(ctx.rng.integers(1, 20000))))
    return _model_case(ctx, path, r"not a readable safetensors")


@CASES("model-empty-file")
def _(ctx):
    path = ctx.tmp / "model.safetensors"
    path.write_bytes(b"")
    return _model_case(ctx, path, r"not a readable safetensors")


@CASES("model-truncated", n=5)
def _(ctx):
    path = _copy(ctx)
    data = path.read_bytes()
    header = 8 + int.from_bytes(data[:8], "little")
    # two cuts in the header, three in the tensor data
    lo, hi = (1, header) if ctx.k < 2 else (header, len(data))
    path.write_bytes(data[: int(ctx.rng.integers(lo, hi))])
    return _model_case(ctx, path, r"not a readable safetensors")


@CASES("model-is-a-folder")
def _(ctx):
    path = ctx.tmp / "model.safetensors"
    path.mkdir()
    return _model_case(ctx, path, r"no such model file")


@CASES("model-missing")
def _(ctx):
    return _model_case(ctx, ctx.tmp / "absent.safetensors", r"no such model file")


@CASES("model-oversized")
def _(ctx):
    path = _copy(ctx)
    ctx.monkeypatch.setattr(model_file, "MAX_BYTES", int(ctx.rng.integers(100, 1000)))
    return _model_case(ctx, path, r"too large")


@CASES("model-h5ad-instead")
def _(ctx):
    path = ctx.tmp / "slide.h5ad"
    path.write_bytes(ctx.env.slide.read_bytes())
    return _model_case(ctx, path, r"not a readable safetensors")


# --- valid safetensors, not (or no longer) a model ------------------------------------
@CASES("model-foreign-safetensors")
def _(ctx):
    path = _save(ctx.tmp / "model.safetensors", {"weight": torch.zeros(3, 3)}, raw_meta=None)
    return _model_case(ctx, path, r"no napari-stlnmf metadata")


@CASES("model-metadata-not-json", n=2)
def _(ctx):
    tensors, meta = _read(ctx.env.model)
    text = json.dumps(meta)
    raw = [text[: int(ctx.rng.integers(1, len(text) - 1))], "format: napari-stlnmf-model"][ctx.k]
    path = _save(ctx.tmp / "model.safetensors", tensors, raw_meta=raw)
    return _model_case(ctx, path, r"corrupt metadata")


@CASES("model-metadata-not-an-object", n=3)
def _(ctx):
    tensors, _ = _read(ctx.env.model)
    raw = ["[1, 2, 3]", '"napari-stlnmf-model"', "null"][ctx.k]
    path = _save(ctx.tmp / "model.safetensors", tensors, raw_meta=raw)
    return _model_case(ctx, path, r"corrupt metadata|format")


@CASES("model-format-version", n=3)
def _(ctx):
    v = [999, "1", None][ctx.k]
    return _tamper(ctx, lambda m: m.update(format_version=v), problem=r"format version")


@CASES("model-format-other")
def _(ctx):
    return _tamper(ctx, lambda m: m.update(format="keras"), problem=r"format 'keras'")


@CASES("model-fewer-cell-types")
def _(ctx):
    def edit(m):
        m["cell_types"].pop(int(ctx.rng.integers(len(m["cell_types"]))))

    return _tamper(ctx, edit, problem=r"does not match|shape")


@CASES("model-fewer-genes")
def _(ctx):
    def edit(m):
        m["genes"].pop(int(ctx.rng.integers(len(m["genes"]))))

    return _tamper(ctx, edit, problem=r"shape")


@CASES("model-more-regions")
def _(ctx):
    return _tamper(ctx, lambda m: m["regions"].append(99), problem=r"does not match")


@CASES("model-more-layers-untied")
def _(ctx):
    def edit(m):
        m["config"].update(tied=False, n_layers=int(ctx.rng.integers(5, 40)))

    return _tamper(ctx, edit, problem=r"shape")


@CASES("model-tensor-wrong-shape", n=3)
def _(ctx):
    name = ["omega_raw", "log_lambda", "signatures"][ctx.k]

    def edit(t):
        t[name] = torch.zeros(*[s + 1 for s in t[name].shape], dtype=t[name].dtype)

    case = _tamper(ctx, edit_tensors=edit, problem=r"shape")
    case.needle = [case.needle, name]
    return case


@CASES("model-nan-tensor", n=4)
def _(ctx):
    name = ["signatures", "omega_raw", "log_lambda", "log_sigma"][ctx.k]

    def edit(t):
        flat = t[name].reshape(-1).clone()
        flat[int(ctx.rng.integers(flat.numel()))] = [math.nan, math.inf][ctx.k % 2]
        t[name] = flat.reshape(t[name].shape)

    case = _tamper(ctx, edit_tensors=edit, problem=r"NaN or infinite")
    case.needle = [case.needle, name]
    return case


@CASES("model-negative-signatures")
def _(ctx):
    def edit(t):
        s = t["signatures"].clone()
        s[int(ctx.rng.integers(s.shape[0])), int(ctx.rng.integers(s.shape[1]))] = -1.0
        t["signatures"] = s

    return _tamper(ctx, edit_tensors=edit, problem=r"negative")


@CASES("model-missing-tensor")
def _(ctx):
    return _tamper(ctx, edit_tensors=lambda t: t.pop("omega_raw"), problem=r"missing")


@CASES("model-extra-tensor")
def _(ctx):
    def edit(t):
        t["payload"] = torch.zeros(4)

    return _tamper(ctx, edit_tensors=edit, problem=r"unexpected tensors")


@CASES("model-bad-library-sizes", n=3)
def _(ctx):
    def edit(m):
        k = len(m["cell_types"])
        m["library_sizes"] = [[-1.0] * k, [1.0] * (k + 1), [math.nan] * k][ctx.k]

    return _tamper(ctx, edit, problem=r"library_sizes")


# Junk in each metadata field the loader relies on: every one must be a ModelFileError.
JUNK = {
    "config": [None, "x", [], {"n_layers": 4}, "+bogus", "data_term=poisson", "n_regions=-2"],
    "cell_types": [None, 5, "abcdefghijklmnopq", []],
    "genes": [None, 7, []],
    "regions": [None, 3, "a"],
    "pitch": [None, "abc", []],
}
JUNK_IDS = [(key, i) for key, values in JUNK.items() for i in range(len(values))]


def _junk_builder(key, i):
    def build(ctx):
        value = JUNK[key][i]

        def edit(m):
            if key == "config" and isinstance(value, str) and value.startswith("+"):
                m["config"][value[1:]] = 1
            elif key == "config" and isinstance(value, str) and "=" in value:
                field, v = value.split("=")
                m["config"][field] = int(v) if v.lstrip("-").isdigit() else v
            else:
                m[key] = value

        return _tamper(ctx, edit, problem=r"metadata|does not match|shape|config|model")

    return build


for _key, _i in JUNK_IDS:
    CASES(f"model-junk-{_key}-{_i}")(_junk_builder(_key, _i))


# --- a valid model for other genes / cell types ---------------------------------------
def _renamed_genes(m, rng):
    m["genes"] = [f"ENSG{int(v):011d}" for v in rng.permutation(10**6)[: len(m["genes"])]]


@CASES("model-for-other-genes-on-mouse-brain")
def _(ctx):
    """A model whose genes are not on the slide: trained on the hippocampus sample, with its
    genes renamed (as if trained for another species), run on the mouse_brain sample."""
    case = _tamper(ctx, lambda m: _renamed_genes(m, ctx.rng), problem=r"lacks \d+ of the model")
    path = case.argv[-1]
    case.argv = ["--sample", "mouse_brain", "--model", path]
    case.needle = ["mouse_brain", "train a model"]
    case.api = lambda: prepare(
        ctx.env.slide_adata, model=load_model(path), spatial_name=str(ctx.env.slide)
    )
    case.api_needle = ctx.env.slide.name
    return case


@CASES("model-genes-missing-from-slide", n=2)
def _(ctx):
    """The hippocampus model on the hippocampus slide with some of the model's genes
    removed: the message names the slide and the first missing genes."""
    path = _copy(ctx)
    genes = load_model(path).reference_.genes
    n_drop = int(ctx.rng.integers(1, len(genes) // 2))
    drop = sorted(ctx.rng.choice(len(genes), size=n_drop, replace=False))
    a = ctx.env.slide_adata
    slide_file = ctx.tmp / "slide.h5ad"
    sub = a[:, ~a.var_names.isin([genes[i] for i in drop])].copy()
    sub.uns = {}
    sub.write_h5ad(slide_file)
    first = genes[drop[0]]
    return Case(
        argv=["--spatial", slide_file, "--model", path],
        needle=[slide_file.name, first],
        problem=rf"lacks {n_drop} of the model's {len(genes)} genes",
        api=lambda: prepare(sub, model=load_model(path), spatial_name=str(slide_file)),
    )


@CASES("model-cell-types-differ-from-reference")
def _(ctx):
    path = _copy(ctx)
    ref = ctx.env.sample.reference.copy()
    labels = ref.obs["cell_type"].astype(str)
    old = str(ctx.rng.choice(sorted(labels.unique())))
    ref.obs["cell_type"] = labels.replace(old, "Renamed_type").to_numpy()
    ref_file = ctx.tmp / "other_ref.h5ad"
    ref.write_h5ad(ref_file)
    return Case(
        argv=["--spatial", ctx.env.slide, "--reference", ref_file, "--model", path]
        + ["--label-key", "cell_type"],
        needle=[ref_file.name, "Renamed_type"],
        problem=r"cell types",
    )


# --- stlnmf info ----------------------------------------------------------------------
@CASES("info-random-bytes")
def _(ctx):
    path = ctx.tmp / "model.safetensors"
    path.write_bytes(ctx.rng.bytes(3000))
    return _model_case(ctx, path, r"not a readable safetensors", command="info")


@CASES("info-truncated")
def _(ctx):
    path = _copy(ctx)
    data = path.read_bytes()
    path.write_bytes(data[: int(ctx.rng.integers(1, len(data)))])
    return _model_case(ctx, path, r"not a readable safetensors", command="info")


@CASES("info-format-version-999")
def _(ctx):
    edit = lambda m: m.update(format_version=999)  # noqa: E731
    return _tamper(ctx, edit, problem=r"format version", command="info")


@pytest.mark.parametrize("case_id", CASES.ids)
def test_bad_model(case_id, env, tmp_path, capsys, monkeypatch):
    check_case(CASES.build(case_id, tmp_path, env, monkeypatch), tmp_path, capsys)


def test_control_model_round_trip(env, tmp_path, capsys):
    """The untampered tiny model (and one re-saved by the tampering code) loads and runs."""
    tensors, meta = _read(env.model)
    path = _save(tmp_path / "same.safetensors", tensors, meta)
    assert load_model(path).reference_.genes == load_model(env.model).reference_.genes
    case = Case(argv=["--spatial", env.slide, "--model", path], ok=True)
    check_case(case, tmp_path, capsys)
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["model"]["method"] == "STLNMF" and run["timings"]["train_seconds"] == 0.0
