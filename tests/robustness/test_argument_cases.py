"""Bad command-line arguments: each one exit 2 and one line naming the argument."""

from __future__ import annotations

import pytest

from tests.robustness.harness import Case, Cases, check_case

CASES = Cases()


def _args(ctx, *extra, method="plainkl") -> list:
    return ["--spatial", ctx.env.slide, "--reference", ctx.env.ref, "--method", method, *extra]


@CASES("out-is-a-file")
def _(ctx):
    f = ctx.tmp / "results.txt"
    f.write_text("keep me\n")
    return Case(argv=_args(ctx), needle=["--out", f.name], problem=r"not a folder", out=f)


@CASES("out-below-a-file")
def _(ctx):
    f = ctx.tmp / "results.txt"
    f.write_text("keep me\n")
    out = f / "sub" / "dir"
    return Case(argv=_args(ctx), needle=["--out", f.name], problem=r"not a folder", out=out)


@CASES("device-cuda-unavailable")
def _(ctx):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    return Case(argv=_args(ctx, "--device", "cuda"), needle="cuda", problem=r"not available")


@CASES("device-unknown")
def _(ctx):
    return Case(argv=_args(ctx, "--device", "tpu"), needle=["--device", "tpu"], problem="choice")


@CASES("method-unknown", n=2)
def _(ctx):
    name = ["rctd", "STLNMF"][ctx.k]
    return Case(argv=_args(ctx, method=name), needle=["--method", name], problem=r"invalid choice")


@CASES("fractions-unknown")
def _(ctx):
    argv = _args(ctx, "--fractions", "percent")
    return Case(argv=argv, needle=["--fractions", "percent"], problem=r"invalid choice")


@CASES("data-term-unknown")
def _(ctx):
    argv = _args(ctx, "--data-term", "poisson")
    return Case(argv=argv, needle=["--data-term", "poisson"], problem=r"invalid choice")


@CASES("epochs-negative", n=2)
def _(ctx):
    v = str(-int(ctx.rng.integers(1, 1000)))
    argv = _args(ctx, "--epochs", v, "--layers", "4", method="stlnmf")
    return Case(argv=argv, needle=["--epochs", v], problem=r">= 0")


@CASES("epochs-not-a-number")
def _(ctx):
    argv = _args(ctx, "--epochs", "ten", method="stlnmf")
    return Case(argv=argv, needle=["--epochs", "ten"], problem=r"invalid int")


@CASES("layers-not-positive", n=2)
def _(ctx):
    v = ["0", "-3"][ctx.k]
    argv = _args(ctx, "--epochs", "1", "--layers", v, method="stlnmf")
    return Case(argv=argv, needle=["--layers", v], problem=r">= 1")


@CASES("markers-per-type-not-positive", n=2)
def _(ctx):
    v = ["0", "-5"][ctx.k]
    argv = _args(ctx, "--markers-per-type", v)
    return Case(argv=argv, needle=["--markers-per-type", v], problem=r">= 1")


@CASES("min-cells-negative")
def _(ctx):
    argv = _args(ctx, "--min-cells", "-1")
    return Case(argv=argv, needle=["--min-cells", "-1"], problem=r">= 0")


@CASES("seed-not-an-integer")
def _(ctx):
    argv = _args(ctx, "--seed", "1.5")
    return Case(argv=argv, needle=["--seed", "1.5"], problem=r"invalid int")


@CASES("seed-negative")
def _(ctx):
    argv = _args(ctx, "--seed", "-7", "--epochs", "1", "--layers", "4", method="stlnmf")
    return Case(argv=argv, needle=["--seed", "-7"], problem=r">= 0")


@CASES("sample-unknown")
def _(ctx):
    return Case(argv=["--sample", "human_heart"], needle="human_heart", problem=r"unknown sample")


@CASES("sample-with-reference")
def _(ctx):
    argv = ["--sample", "hippocampus", "--reference", ctx.env.ref]
    return Case(argv=argv, needle="--reference", problem=r"own reference")


@CASES("spatial-and-sample")
def _(ctx):
    argv = ["--sample", "hippocampus", "--spatial", ctx.env.slide]
    return Case(argv=argv, needle=["--spatial", "--sample"], problem=r"not allowed")


@CASES("no-reference-no-model")
def _(ctx):
    return Case(argv=["--spatial", ctx.env.slide], needle="--reference", problem=r"required")


@CASES("train-without-reference")
def _(ctx):
    argv = ["--spatial", ctx.env.slide, "--save", ctx.tmp / "m.safetensors"]
    return Case(argv=argv, needle="--reference", problem=r"required", command="train")


@CASES("train-baseline-method")
def _(ctx):
    argv = [*_args(ctx, method="nnls"), "--save", ctx.tmp / "m.safetensors"]
    return Case(argv=argv, needle="--method", problem=r"only --method stlnmf", command="train")


@CASES("train-save-into-missing-folder")
def _(ctx):
    target = ctx.tmp / "no" / "such" / "m.safetensors"
    argv = [*_args(ctx, "--epochs", "1", "--layers", "4", method="stlnmf"), "--save", target]
    return Case(argv=argv, needle=["--save", "no/such"], problem=r"does not exist", command="train")


@CASES("train-save-onto-a-folder")
def _(ctx):
    target = ctx.tmp / "models"
    target.mkdir()
    argv = [*_args(ctx, "--epochs", "1", "--layers", "4", method="stlnmf"), "--save", target]
    return Case(argv=argv, needle=["--save", "models"], problem=r"is a folder", command="train")


@CASES("deconvolve-save-model-into-missing-folder")
def _(ctx):
    target = ctx.tmp / "gone" / "m.safetensors"
    argv = _args(ctx, "--epochs", "1", "--layers", "4", "--save-model", target, method="stlnmf")
    return Case(argv=argv, needle=["--save-model", "gone"], problem=r"does not exist")


@CASES("missing-required-out")
def _(ctx):
    return Case(argv=_args(ctx), needle="--out", problem=r"required", with_out=False)


@CASES("unknown-option")
def _(ctx):
    return Case(argv=_args(ctx, "--epohcs", "3"), needle="--epohcs", problem=r"unrecognized")


@pytest.mark.parametrize("case_id", CASES.ids)
def test_bad_arguments(case_id, env, tmp_path, capsys, monkeypatch):
    case = CASES.build(case_id, tmp_path, env, monkeypatch)
    check_case(case, tmp_path, capsys)
