"""The training loop on real data with tiny models: run folder, exact resume, NaN stop, bad files, processes."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import read_by

from vidsynth.config import DataConfig
from vidsynth.errors import UserError
from vidsynth.losses.vae import NLL_CONSTANT
from vidsynth.training import RunConfig, model_config, train_config
from vidsynth.training.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from vidsynth.training.loop import train
from vidsynth.training.objective import lr_factor


def tiny_model(model: str) -> dict:
    """Small widths for ``model``."""
    return read_by(model, z_dim=16, motion_dim=4, g_channels=8, d_channels=8, max_channels=32, image_frames=2,
                   w_dim=32, motion_spacing=4)


def tiny(model="mocogan", steps=4, data=None, **train_opts) -> RunConfig:
    data = data or DataConfig(name="shapes", resolution=32, num_frames=8, length=64)
    opts = dict(steps=steps, batch_size=4, sample_every=1000, checkpoint_every=1000, log_every=1, num_samples=2)
    return RunConfig(data, model_config(model, **tiny_model(model)), train_config(model, **{**opts, **train_opts}))


def objective_state(run_dir: Path, index: int = -1) -> dict:
    return load_checkpoint(list_checkpoints(run_dir / "checkpoints")[index])


def assert_states_equal(a, b, path="state"):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), f"{path} differs"
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), f"{path} keys differ"
        for k in a:
            assert_states_equal(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_states_equal(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a} != {b}"


@pytest.mark.parametrize("model", ["mocogan", "vgan", "continuous"])
def test_run_folder_and_resume_is_bit_exact(tmp_path, model):
    straight = train(tiny(model, steps=4, checkpoint_every=2, sample_every=2), outdir=tmp_path / "a", progress=False)
    assert straight.name == f"00000-{model}-shapes32"
    for name in ("config.json", "log.txt", "stats.jsonl", "samples/step-0000002.png", "samples/step-0000004.mp4",
                 "checkpoints/step-0000004.pt"):
        assert (straight / name).is_file(), name
    config = json.loads((straight / "config.json").read_text())
    assert config["model"]["resolution"] == 32 and config["model"]["num_frames"] == 8
    assert config["model"]["num_classes"] == 5 and config["class_names"][0] == "circle"
    stats = [json.loads(line) for line in (straight / "stats.jsonl").read_text().splitlines()]
    assert [s["step"] for s in stats] == [1, 2, 3, 4] and all("clips_per_s" in s for s in stats)

    first = train(tiny(model, steps=2, checkpoint_every=2, sample_every=2), outdir=tmp_path / "b", progress=False)
    cfg = RunConfig.load(first)
    cfg.train = dataclasses.replace(cfg.train, steps=4)
    resumed = train(cfg, resume=first, progress=False)
    assert resumed == first
    a, b = objective_state(straight), objective_state(resumed)
    assert a["step"] == b["step"] == 4 and a["ranks"][0]["consumed"] == b["ranks"][0]["consumed"] == 16
    assert_states_equal(a["objective"], b["objective"])  # models, EMA, optimizers, shared RNG: bit for bit
    assert_states_equal(a["ranks"], b["ranks"])  # per-process RNGs and data position


def test_checkpoints_rotate_and_load_without_pickle(tmp_path):
    run = train(tiny(steps=4, checkpoint_every=1, keep_checkpoints=2), outdir=tmp_path, progress=False)
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["step-0000003.pt", "step-0000004.pt"]
    torch.load(list_checkpoints(run / "checkpoints")[-1], weights_only=True)  # raises if anything needs pickle
    (run / "checkpoints" / "step-0000009.pt.tmp123").write_bytes(b"half-written")  # a kill during a write
    assert list_checkpoints(run / "checkpoints")[-1].name == "step-0000004.pt"


def test_nan_stops_with_step_and_loss_and_keeps_last_checkpoint(tmp_path):
    run = train(tiny(steps=2, checkpoint_every=1, keep_checkpoints=5), outdir=tmp_path, progress=False)
    state = objective_state(run)
    d_state = state["objective"]["modules"]["discriminators"]
    key = next(k for k in d_state if k.endswith("weight") or k.endswith("original"))
    d_state[key].fill_(float("nan"))
    save_checkpoint(state, run / "checkpoints", 2, keep=5)
    before = {p.name: p.read_bytes() for p in list_checkpoints(run / "checkpoints")}
    cfg = RunConfig.load(run)
    cfg.train = dataclasses.replace(cfg.train, steps=4)
    with pytest.raises(UserError, match=r"step 3: loss D_\w+ is nan.*last good checkpoint.*step-0000002.pt"):
        train(cfg, resume=run, progress=False)
    assert {p.name: p.read_bytes() for p in list_checkpoints(run / "checkpoints")} == before


def test_bad_videos_in_the_training_folder_do_not_stop_training(tmp_path, make_video):
    root = tmp_path / "videos"
    for c in ("a", "b"):
        for i in range(3):
            make_video(root / c / f"{c}{i}.mp4", num_frames=12, height=40, width=40, seed=i)
    (root / "a" / "broken.mp4").write_text("not a video")
    data = DataConfig(name="videofolder", root=str(root), resolution=32, num_frames=8, cache="none")
    run = train(tiny(steps=3, data=data), outdir=tmp_path / "runs", progress=False)
    assert objective_state(run)["step"] == 3
    assert "broken.mp4" not in (run / "config.json").read_text()


def test_config_errors_before_work(tmp_path):
    with pytest.raises(UserError, match="precision=bf16 on CPU"):
        train(tiny(precision="bf16"), outdir=tmp_path, progress=False)
    with pytest.raises(UserError, match="divisible"):
        train(tiny(batch_size=6, accum=4), outdir=tmp_path, progress=False)
    assert not (tmp_path / "00000-mocogan-shapes32").exists()


def _final_params(run_dir: Path, rank: int = 0) -> dict:
    return objective_state(run_dir)["objective"]["modules"]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["mocogan", "vae", "completion", "continuous"])
def test_two_processes_equal_one_process(tmp_path, model):
    """2 gloo processes with batch 2x2: both ranks identical, and equal to 1 process with batch 4."""
    extra = ["task=inpaint", "content_l2=1", "adversarial=0.1"] if model == "completion" else []
    cfg = tiny(model, steps=3, checkpoint_every=3, sample_every=2, **({"content_l2": 1.0, "adversarial": 0.1}
                                                                    if model == "completion" else {}))
    if model == "completion":
        cfg.model = dataclasses.replace(cfg.model, task="inpaint")
    single = train(cfg, outdir=tmp_path / "one", progress=False)
    overrides = ["data.name=shapes", "resolution=32", "num_frames=8", "length=64", "steps=3", "batch_size=4",
                 "checkpoint_every=3", "sample_every=2", "log_every=1", "num_samples=2",
                 *(f"{k}={v}" for k, v in tiny_model(model).items()), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "VIDSYNTH_CACHE": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "vidsynth.train", *overrides, "--model", model, "--outdir", str(tmp_path / "two")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    two = next((tmp_path / "two").iterdir())
    state = objective_state(two)
    assert state["world_size"] == 2 and len(state["ranks"]) == 2  # the replicated state once, per-rank state twice
    assert state["ranks"][0]["consumed"] == state["ranks"][1]["consumed"] == 3 * 2  # steps x batch per rank
    assert not torch.equal(state["ranks"][0]["objective"]["rng"], state["ranks"][1]["objective"]["rng"])
    ref = _final_params(single)
    # Adam's early steps are close to sign(gradient) * lr, so a gradient within rounding of 0 may step either way:
    # a few elements may differ by up to a step per update, every other one must agree to rounding
    step = 2 * 3 * max(getattr(cfg.train, k, 0) for k in ("lr", "lr_g", "lr_d"))
    for name, module in state["objective"]["modules"].items():
        for key, value in module.items():
            if value.is_floating_point():
                off = ~torch.isclose(value, ref[name][key], rtol=1e-4, atol=1e-5)
                assert off.sum() <= value.numel() // 1000, f"{name}.{key}: {int(off.sum())} of {value.numel()} differ"
                assert (value - ref[name][key]).abs().max() <= step, f"{name}.{key}"


def test_n_critic_and_accumulation_consume_the_right_data(tmp_path):
    run = train(tiny(steps=2, n_critic=2, accum=2, checkpoint_every=2), outdir=tmp_path, progress=False)
    state = objective_state(run)
    assert state["ranks"][0]["consumed"] == 2 * 2 * 4  # steps x n_critic x batch
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert {"D_image", "D_video", "G_image", "G_video"} <= set(stats[-1])


@pytest.mark.parametrize("loss", ["wgan", "wgan-gp", "lsgan", "hinge"])
def test_every_loss_trains_through_the_loop(tmp_path, loss):
    run = train(tiny(model="vgan", steps=2, loss=loss, r1_gamma=1.0 if loss == "hinge" else 0.0,
                     augment="color,translation,cutout" if loss == "lsgan" else ""),
                outdir=tmp_path, progress=False)
    stats = json.loads((run / "stats.jsonl").read_text().splitlines()[-1])
    assert ("gp" in stats) == (loss == "wgan-gp") and ("r1" in stats) == (loss == "hinge")
    if loss == "wgan":  # weight clipping keeps every D parameter inside [-clip, clip]
        d_state = objective_state(run)["objective"]["modules"]["discriminators"]
        params = [v for k, v in d_state.items() if k.endswith(("original", ".weight", ".bias"))]
        assert params and max(float(v.abs().max()) for v in params) <= 0.01


def test_lazy_r1_runs_every_kth_step_with_k_times_the_weight(tmp_path):
    """StyleGAN2's lazy regularisation: r1_every=2 adds the penalty on steps 1, 3, ... (0-based 0, 2) only, at twice
    the weight; the first step is otherwise the same as with r1 every step."""
    every = train(tiny(model="vgan", steps=1, loss="hinge", r1_gamma=1.0), outdir=tmp_path / "a", progress=False)
    lazy = train(tiny(model="vgan", steps=3, loss="hinge", r1_gamma=1.0, r1_every=2), outdir=tmp_path / "b",
                 progress=False)
    first = json.loads((every / "stats.jsonl").read_text().splitlines()[0])
    stats = [json.loads(line) for line in (lazy / "stats.jsonl").read_text().splitlines()]
    assert [s["step"] for s in stats if "r1" in s] == [1, 3]
    assert stats[0]["r1"] == pytest.approx(2 * first["r1"], abs=1e-4)  # stats.jsonl keeps 4 significant digits
    with pytest.raises(UserError, match="r1_every=0 is out of range"):
        train(tiny(r1_every=0), outdir=tmp_path / "c", progress=False)


def test_vae_trains_resumes_exactly_and_reports_validation_elbo(tmp_path):
    opts = dict(checkpoint_every=2, sample_every=2, val_every=2, val_clips=6, kl_warmup=3, free_bits=0.01)
    straight = train(tiny("vae", steps=4, **opts), outdir=tmp_path / "a", progress=False)
    stats = [json.loads(line) for line in (straight / "stats.jsonl").read_text().splitlines()]
    assert [s["step"] for s in stats if "recon" in s] == [1, 2, 3, 4]
    val = [s for s in stats if "val_nelbo" in s]
    assert [s["step"] for s in val] == [2, 4]
    assert all(math.isclose(s["val_nelbo"], s["val_recon"] + s["val_kl"] + NLL_CONSTANT["mse"], rel_tol=1e-4)
               for s in val)
    assert (straight / "samples" / "step-0000004.mp4").is_file()
    first = train(tiny("vae", steps=2, **opts), outdir=tmp_path / "b", progress=False)
    cfg = RunConfig.load(first)
    cfg.train = dataclasses.replace(cfg.train, steps=4)
    resumed = train(cfg, resume=first, progress=False)
    assert_states_equal(objective_state(straight)["objective"], objective_state(resumed)["objective"])
    assert "discriminators" not in objective_state(straight)["objective"]["optimizers"]


def test_vae_gan_trains_its_discriminator(tmp_path):
    run = train(tiny("vae", steps=2, checkpoint_every=2, adversarial=0.1, loss="hinge"), outdir=tmp_path,
                progress=False)
    state = objective_state(run)["objective"]
    assert "discriminators" in state["optimizers"]
    stats = json.loads((run / "stats.jsonl").read_text().splitlines()[-2])
    assert {"recon", "kl", "D_video", "G_video"} <= set(stats)


def test_vae_without_a_val_split_trains_and_says_why(tmp_path, make_video):
    root = tmp_path / "videos"
    for i in range(3):
        make_video(root / "a" / f"a{i}.mp4", num_frames=12, height=40, width=40, seed=i)
    data = DataConfig(name="videofolder", root=str(root), resolution=32, num_frames=8, cache="none")
    run = train(tiny("vae", steps=2, data=data, val_every=1), outdir=tmp_path / "runs", progress=False)
    assert objective_state(run)["step"] == 2
    assert "no validation ELBO: split=val is empty: set val_fraction" in (run / "log.txt").read_text()
    assert "val_nelbo" not in (run / "stats.jsonl").read_text()


def test_completion_trains_and_resumes_exactly(tmp_path):
    def cfg(steps):
        run = tiny("completion", steps=steps, checkpoint_every=2, sample_every=2, content_l2=1.0, adversarial=0.01,
                   loss="hinge", beta=1e-3, kl_warmup=2)
        run.model = dataclasses.replace(run.model, context=3, stochastic=True, latent_channels=2)
        return run
    straight = train(cfg(4), outdir=tmp_path / "a", progress=False)
    stats = json.loads((straight / "stats.jsonl").read_text().splitlines()[-1])
    assert {"l2", "kl", "D_video", "G_video"} <= set(stats)
    assert (straight / "samples" / "step-0000004.png").is_file()
    first = train(cfg(2), outdir=tmp_path / "b", progress=False)
    resumed_cfg = RunConfig.load(first)
    resumed_cfg.train = dataclasses.replace(resumed_cfg.train, steps=4)
    resumed = train(resumed_cfg, resume=first, progress=False)
    assert_states_equal(objective_state(straight)["objective"], objective_state(resumed)["objective"])


@pytest.mark.parametrize("steps", [10, 1000])
def test_onecycle_schedule_matches_torch(steps):
    """The schedule against torch's OneCycleLR (its defaults), the reference implementation."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    reference = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps)
    for step in range(steps):
        assert lr_factor("onecycle", step, steps) * 2e-3 == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-9)
        optimizer.step()
        reference.step() if step < steps - 1 else None
    assert lr_factor("onecycle", steps + 5, steps) == lr_factor("onecycle", steps - 1, steps)
    assert lr_factor("constant", 7, steps) == 1.0


def test_onecycle_run_resumes_exactly_from_a_mid_run_checkpoint(tmp_path):
    """A run killed after its step-2 checkpoint resumes on the same schedule (the learning rate is a function of
    the step and the configured steps) and ends bit for bit where the uninterrupted run ends."""
    cfg = tiny("completion", steps=4, checkpoint_every=2, content_l2=1.0, lr_schedule="onecycle", lr=1e-3)
    cfg.model = dataclasses.replace(cfg.model, context=3)
    straight = train(cfg, outdir=tmp_path / "a", progress=False)
    state = objective_state(straight)["objective"]
    assert state["optimizers"]["generator"]["param_groups"][0]["lr"] == pytest.approx(
        1e-3 * lr_factor("onecycle", 3, 4), rel=1e-12)
    killed = tmp_path / "b" / straight.name
    shutil.copytree(straight, killed)
    list_checkpoints(killed / "checkpoints")[-1].unlink()
    resumed = train(RunConfig.load(killed), resume=killed, progress=False)
    assert_states_equal(state, objective_state(resumed)["objective"])


def test_a_run_of_format_1_resumes_exactly(tmp_path):
    """Runs written before per-family options (every family's options in config.json, no format_version; every
    process's full copy of the state in a checkpoint) are converted on reading and resume bit for bit."""
    straight = train(tiny(steps=4, checkpoint_every=2), outdir=tmp_path / "a", progress=False)
    first = train(tiny(steps=2, checkpoint_every=2), outdir=tmp_path / "b", progress=False)
    config = json.loads((first / "config.json").read_text())
    del config["format_version"]
    config["model"] |= {"two_stream": False, "task": "predict", "latent": "vector"}
    config["train"] |= {"beta": 1.0, "recon": "mse", "val_every": 500}
    (first / "config.json").write_text(json.dumps(config))
    path = list_checkpoints(first / "checkpoints")[-1]
    state = torch.load(path, weights_only=True)
    rank = state["ranks"][0]
    torch.save({"step": state["step"], "consumed": rank["consumed"], "world_size": 1,
                "objective": [{**state["objective"], "rng": rank["objective"]["rng"]}], "rng": [rank["rng"]]}, path)
    cfg = RunConfig.load(first)
    cfg.train = dataclasses.replace(cfg.train, steps=4)
    resumed = train(cfg, resume=first, progress=False)
    assert json.loads((first / "config.json").read_text())["format_version"] == 2
    assert_states_equal(objective_state(straight)["objective"], objective_state(resumed)["objective"])
    assert_states_equal(objective_state(straight)["ranks"], objective_state(resumed)["ranks"])


def test_time_budget_stops_with_a_checkpoint_and_samples(tmp_path):
    run = train(tiny(steps=1000, minutes=1e-4, checkpoint_every=500, sample_every=500), outdir=tmp_path,
                progress=False)
    state = objective_state(run)
    assert state["step"] == 1 and state["elapsed"] > 0.006  # stopped after the first step
    assert (run / "samples" / "step-0000001.png").is_file()
    assert "the time budget of 0.0001 minutes is spent" in (run / "log.txt").read_text()
    cfg = RunConfig.load(run)
    cfg.train = dataclasses.replace(cfg.train, minutes=0.0, steps=2)
    assert objective_state(train(cfg, resume=run, progress=False))["step"] == 2


def test_an_option_the_family_does_not_read_is_rejected_before_work(tmp_path):
    cfg = tiny()
    cfg.train = train_config("vae", steps=1, beta=2.0)  # a VAE option on a mocogan run
    with pytest.raises(UserError, match=r"^beta=2.0 is a completion / vae option that mocogan does not read"):
        train(cfg, outdir=tmp_path, progress=False)
    assert not list(tmp_path.iterdir())
