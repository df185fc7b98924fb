"""Malformed invocations of every subcommand, through the real ``vidsynth`` entry point (in this process, to keep
a long table fast): each answers one line on stderr, exit code 2, no traceback, and leaves no run folder behind."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vidsynth.cli import main

TINY = ["steps=2", "sample_every=2", "checkpoint_every=2", "log_every=1", "num_samples=2", "g_channels=8",
        "d_channels=8", "max_channels=16", "num_frames=8", "resolution=32", "length=8", "batch_size=2"]
TRAIN = ["train", "--outdir", "{runs}", *TINY]


def call(capsys, *args) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return exit_info.value.code, capsys.readouterr().err


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny mocogan run, a tiny completion run (predict, 4 context frames), an image and a video."""
    root = tmp_path_factory.mktemp("runs")
    for args in (["--preset", "quick", "z_dim=16"],
                 ["--model", "completion", "--data", "shapes", "context=4", "conditional=false"]):
        try:
            main(["train", "--outdir", str(root / "runs"), *args, *[a for a in TINY if a != "d_channels=8"]])
        except SystemExit as e:
            assert e.code in (0, None)
    gan, completion = sorted((root / "runs").iterdir())
    image = root / "frame.png"
    shutil.copy(next((gan / "samples").glob("*.png")), image)  # a frame grid: not a strip of square frames
    video = next((gan / "samples").glob("*.mp4"))
    return {"gan": gan, "completion": completion, "image": image, "video": video, "root": root}


CASES = [
    # training options: values out of their declared range, of the wrong type, or that nothing can run
    (TRAIN + ["lr_g=nan"], "lr_g=nan is out of range"),
    (TRAIN + ["lr_g=-1"], "lr_g=-1.0 is out of range"),
    (TRAIN + ["lr_g=inf"], "lr_g=inf is out of range"),
    (TRAIN + ["lr_d=0"], "lr_d=0.0 is out of range"),
    (TRAIN + ["beta2=1"], "beta2=1.0 is out of range: use a value in [0, 1)"),
    (TRAIN + ["beta1=-0.5"], "beta1=-0.5 is out of range"),
    (TRAIN + ["ema=nan"], "ema=nan is out of range"),
    (TRAIN + ["num_workers=-1"], "num_workers=-1 is out of range"),
    (TRAIN + ["keep_checkpoints=-1"], "keep_checkpoints=-1 is out of range"),
    (TRAIN + ["augment=nosuch"], "augment='nosuch'"),
    (TRAIN + ["steps=0"], "steps=0 is out of range"),
    (TRAIN + ["steps=abc"], "bad value for steps"),
    (TRAIN + ["batch_size=10000000"], "batch_size=10000000 is out of range"),
    (TRAIN + ["batch_size=4096", "resolution=256", "num_frames=256"], "free: lower batch_size, or raise accum"),
    (TRAIN + ["num_samples=10000000"], "num_samples=10000000 is out of range"),
    (TRAIN + ["g_channels=10000000"], "g_channels=10000000 is out of range"),
    (TRAIN + ["num_frames=1000000000"], "num_frames=1000000000 is out of range"),
    (TRAIN + ["z_dim=0"], "z_dim=0 is out of range"),
    (TRAIN + ["minutes=-1"], "minutes=-1.0 is out of range"),
    (TRAIN + ["r1_every=0"], "r1_every=0 is out of range"),
    (TRAIN + ["length=-5"], "length=-5 is out of range"),
    (TRAIN + ["resolution=48"], "resolution=48 is not supported"),
    (TRAIN + ["metrics=nosuch"], "unknown metric 'nosuch'"),
    (TRAIN + ["max_loss=-1"], "max_loss=-1.0 is out of range"),
    (TRAIN + ["nosuch=1"], "unknown option"),
    (TRAIN + ["beta=2"], "beta=2 is a completion / vae option that mocogan does not read"),
    (["train", "--outdir", "/proc/vidsynth-runs", *TINY], "cannot write /proc/vidsynth-runs"),
    (["train", "--outdir", "{image}/runs", *TINY], "cannot write"),
    (["train", "--resume", "{root}/nowhere"], "has no config.json"),
    (["train", "--resume", "latest", "--outdir", "{root}"], "no run with a checkpoint"),
    (["train", "--resume", "{gan}", "lr_g=1"], "on --resume only"),
    (["train", "--preset", "nosuch"], "unknown preset 'nosuch'"),
    # sample
    (["sample", "{gan}", "--out", "/proc/vidsynth-samples"], "cannot write /proc/vidsynth-samples"),
    (["sample", "{gan}", "--seeds", "abc", "--out", "{root}/s"], "--seeds 'abc'"),
    (["sample", "{gan}", "--seeds", "5-1", "--out", "{root}/s"], "names no seed"),
    (["sample", "{gan}", "--seeds", "0-9999999", "--format", "grid", "--out", "{root}/s"], "free: ask for fewer"),
    (["sample", "{gan}", "--seeds", "0-99999999", "--out", "{root}/s"], "names 100000000 seeds: at most 10000000"),
    (["sample", "{gan}", "--seeds", "0-99999999999999999999999", "--out", "{root}/s"], "from 0 to 2^63 - 1"),
    (["sample", "{gan}", "--class", "nosuch", "--out", "{root}/s"], "--class 'nosuch'"),
    (["sample", "{gan}", "--frames", "0", "--out", "{root}/s"], "--frames"),
    (["sample", "{gan}", "--truncation", "5", "--out", "{root}/s"], "--truncation"),
    (["sample", "{root}", "--out", "{root}/s"], "neither a run folder"),
    (["sample", "{completion}", "--out", "{root}/s"], "completes given clips"),
    # export, show
    (["export", "{gan}", "--out", "/proc/vidsynth-export"], "cannot write /proc/vidsynth-export"),
    (["export", "{gan}", "--out", "{image}"], "is a file"),
    (["show", "shapes", "--out", "/proc/vidsynth/x.png"], "cannot write /proc/vidsynth"),
    (["show", "shapes", "--num", "100000", "--out", "x.png"], "--num"),
    # prediction and interpolation
    (["predict", "{completion}", "--input", "{video}", "--frames", "1000000", "--out", "{root}/p.mp4"],
     "free: ask for fewer --frames"),
    (["predict", "{completion}", "--input", "{image}", "--out", "/proc/vidsynth/p.mp4"], "cannot write"),
    (["predict", "{completion}", "--input", "{image}", "--context", "1000", "--out", "{root}/p.mp4"], "context="),
    (["predict", "{gan}", "--input", "{image}", "--out", "{root}/p.mp4"], "completion"),
    (["interpolate", "{completion}", "--first", "{image}", "--last", "{image}", "--frames", "1000000", "--out",
      "{root}/i.mp4"], "free: ask for fewer --frames"),
    (["interpolate", "{completion}", "--first", "{image}", "--last", "{image}", "--out", "/proc/vidsynth/i.mp4"],
     "cannot write /proc/vidsynth"),
    (["inpaint", "{completion}", "--input", "{video}", "--mask", "box:1,2", "--out", "{root}/f.mp4"], "--mask"),
    (["inpaint", "{completion}", "--input", "{image}", "--mask", "box:1,1,4,4", "--out", "{root}/f.mp4"],
     "not a multiple of its height"),
    # eval, prepare
    (["eval", "{gan}", "--metrics", ""], "--metrics names no metric"),
    (["eval", "{gan}", "--metrics", " , "], "--metrics names no metric"),
    (["eval", "{gan}", "--metrics", "nosuch"], "unknown metric 'nosuch'"),
    (["eval", "{gan}", "--metrics", "fvd0_16f"], "fvd0_16f"),
    (["eval", "--metrics", "fvd16_16f"], "needs a run folder or --fake"),
    (["prepare", "shapes", "split=val", "length=0"], "length=0 is out of range"),
    (["prepare", "videofolder", "root={root}", "val_fraction=nan"], "val_fraction=nan is out of range"),
    (["prepare", "videofolder", "root={root}/nowhere"], "is not a folder"),
]


@pytest.mark.parametrize("args, message", CASES, ids=[" ".join(a[:1] + a[-2:]) for a, _ in CASES])
def test_a_malformed_invocation_answers_one_line(runs, capsys, args, message):
    args = [a.format(**runs, runs=runs["root"] / "fresh") for a in args]
    before = sorted(runs["root"].rglob("0000*-*"))
    code, err = call(capsys, *args)
    assert code == 2, err
    assert message in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert "weights_only" not in err
    assert sorted(runs["root"].rglob("0000*-*")) == before  # no run folder left behind


def test_prepare_reports_the_split_it_is_given(capsys):
    for split, shown in (([], {"train", "val", "test"}), (["split=val"], {"val"})):
        main(["prepare", "shapes", "length=8", *split])  # returns (no SystemExit) when it succeeds
        out = capsys.readouterr().out
        assert {line.split(":")[0] for line in out.splitlines() if " clips, " in line} == shown, out


def test_sample_writes_a_seed_range_in_chunks_with_progress(runs, tmp_path):
    main(["sample", str(runs["gan"]), "--seeds", "0-39", "--out", str(tmp_path / "s")])
    assert len(list((tmp_path / "s").glob("seed*.mp4"))) == 40
    assert not list((tmp_path / "s").glob(".*"))  # no temp file left


def test_an_output_path_is_checked_before_work(tmp_path):
    from vidsynth.errors import UserError
    from vidsynth.io import writable_folder
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="cannot write"):
        writable_folder(tmp_path / "file" / "out")
    assert writable_folder(tmp_path / "a" / "b") == Path(tmp_path / "a" / "b")
