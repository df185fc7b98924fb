"""Nothing lost, nothing executed: kills inside a resume (driven deterministically by a hook that SIGKILLs the real
CLI process at a chosen write), damaged and crafted checkpoints, runaway losses, and two runs claiming one folder."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from vidsynth.training.checkpoint import list_checkpoints, load_checkpoint

TINY = ["steps=3", "sample_every=3", "checkpoint_every=1", "log_every=1", "num_samples=2", "g_channels=8",
        "d_channels=8", "max_channels=16", "z_dim=16", "num_frames=8", "length=16", "batch_size=2"]

# Runs the real `vidsynth` entry point with one write sabotaged: `replace` SIGKILLs the process when the n-th file
# named NAME is about to be renamed into place (its temp file fully written); `write` when NAME's text is half
# written into its temp file.
KILLER = textwrap.dedent('''
    import os, signal, sys
    from pathlib import Path
    mode, name, nth = sys.argv[1], sys.argv[2], int(sys.argv[3])
    seen = 0
    def hit(path):
        global seen
        if Path(path).name.lstrip(".").startswith(Path(name).stem):  # the file or a temp file of it
            seen += 1
            return seen == nth
        return False
    real_replace, real_write = os.replace, Path.write_text
    def replace(src, dst, *a, **k):
        if mode == "replace" and Path(dst).name == name and hit(dst):
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst, *a, **k)
    def write_text(self, text, *a, **k):
        if mode == "write" and hit(self):
            real_write(self, text[: len(text) // 2], *a, **k)
            os.kill(os.getpid(), signal.SIGKILL)
        return real_write(self, text, *a, **k)
    os.replace, Path.write_text = replace, write_text
    from vidsynth.cli import main
    main(sys.argv[4:])
''')


def vidsynth(*args, cwd: Path, kill: tuple[str, str, int] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "VIDSYNTH_CACHE": str(cwd / ".cache")}
    if kill is None:
        cmd = [sys.executable, "-m", "vidsynth.cli", *map(str, args)]
    else:
        cmd = [sys.executable, "-c", KILLER, *map(str, kill), *map(str, args)]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture
def run(tmp_path) -> Path:
    out = vidsynth("train", "--preset", "quick", "--outdir", "runs", *TINY, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    return next((tmp_path / "runs").iterdir())


def weights(path: Path) -> dict:
    return load_checkpoint(path)["objective"]["modules"]["generator"]


@pytest.mark.parametrize("mode", ["replace", "write"])
def test_a_kill_while_resume_writes_config_json_loses_nothing(run, mode):
    """The resume that changes steps rewrites config.json; killed there, the old config.json and every checkpoint
    stay; the next resume removes the dead writer's temp file and ends where an uninterrupted run ends."""
    cwd = run.parent.parent
    config = (run / "config.json").read_text()
    killed = vidsynth("train", "--resume", run, "steps=5", cwd=cwd, kill=(mode, "config.json", 1))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (run / "config.json").read_text() == config  # never a partial file
    assert list(run.glob(".config.tmp*"))  # what the killed writer left
    assert vidsynth("sample", run, "--seeds", "0", "--out", "s", cwd=cwd).returncode == 0
    resumed = vidsynth("train", "--resume", run, "steps=5", cwd=cwd)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert not list(run.glob(".*.tmp*"))
    assert json.loads((run / "config.json").read_text())["train"]["steps"] == 5

    straight = vidsynth("train", "--preset", "quick", "--outdir", "straight", *TINY, "steps=5", cwd=cwd)
    assert straight.returncode == 0, straight.stderr[-2000:]
    other = next((cwd / "straight").iterdir())
    for a, b in zip(weights(list_checkpoints(run / "checkpoints")[-1]).values(),
                    weights(list_checkpoints(other / "checkpoints")[-1]).values()):
        assert torch.equal(a, b)
    steps = [json.loads(line)["step"] for line in (run / "stats.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5]  # one record per step, as in one uninterrupted run


def test_a_kill_mid_checkpoint_leaves_the_last_good_one_and_stats_agree(run):
    """Killed while the step-5 checkpoint is renamed into place: the step-4 one is the latest, the stats records
    logged after it are dropped on resume, and the dead writer's temp file is removed."""
    cwd = run.parent.parent
    killed = vidsynth("train", "--resume", run, "steps=6", cwd=cwd, kill=("replace", "step-0000005.pt", 1))
    assert killed.returncode == -signal.SIGKILL
    assert list_checkpoints(run / "checkpoints")[-1].name == "step-0000004.pt"
    assert list((run / "checkpoints").glob(".step-0000005.tmp*"))
    assert vidsynth("train", "--resume", run, "steps=6", cwd=cwd).returncode == 0
    assert not list((run / "checkpoints").glob(".*"))
    steps = [json.loads(line)["step"] for line in (run / "stats.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_a_truncated_latest_checkpoint_falls_back_to_the_one_before(run):
    cwd = run.parent.parent
    latest = list_checkpoints(run / "checkpoints")[-1]
    latest.write_bytes(latest.read_bytes()[:1000])
    out = vidsynth("sample", run, "--seeds", "0", "--out", "s", cwd=cwd)
    assert out.returncode == 0, out.stderr
    assert "step-0000003.pt is damaged" in out.stderr and "using the one before it" in out.stderr
    assert "Traceback" not in out.stderr
    resumed = vidsynth("train", "--resume", run, "steps=4", cwd=cwd)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (run / "checkpoints" / "step-0000003.pt.damaged").is_file()  # kept to look at, out of the way
    assert [p.name for p in list_checkpoints(run / "checkpoints")][-1] == "step-0000004.pt"


class _System:
    def __reduce__(self):
        return os.system, ("touch EXECUTED",)


class _Open:
    def __reduce__(self):
        return open, ("EXECUTED", "w")


def _torch_zip(path: Path):
    torch.save({"step": 9, "world_size": 1, "objective": _System()}, path)


def _legacy_pickle(path: Path):
    path.write_bytes(pickle.dumps({"step": 9, "objective": _System()}))


def _open_call(path: Path):
    torch.save({"step": 9, "world_size": 1, "objective": _Open()}, path)


@pytest.mark.parametrize("craft", [_torch_zip, _legacy_pickle, _open_call])
def test_a_crafted_checkpoint_is_not_executed_and_answers_one_line(run, craft):
    cwd = run.parent.parent
    for old in list_checkpoints(run / "checkpoints"):
        old.unlink()
    craft(run / "checkpoints" / "step-0000009.pt")
    for args in (["sample", run, "--seeds", "0", "--out", "s"], ["train", "--resume", run],
                 ["export", run, "--out", "exported"]):
        out = vidsynth(*args, cwd=cwd)
        assert out.returncode == 2, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert "step-0000009.pt" in out.stderr and "weights_only" not in out.stderr, out.stderr
        assert "contains code or objects vidsynth does not load; it was not executed" in out.stderr
        assert not (cwd / "EXECUTED").exists()


def test_runaway_losses_stop_the_run_at_the_last_good_checkpoint(tmp_path):
    """A loss beyond max_loss for max_loss_steps steps stops the run; no checkpoint is written while the losses are
    out of range; the message counts steps as the log does."""
    out = vidsynth("train", "--preset", "quick", "--outdir", "runs", *TINY, "steps=6", "max_loss=0.5",
                   "max_loss_steps=3", cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    run = next((tmp_path / "runs").iterdir())
    message = out.stderr.strip().splitlines()[-1]
    assert "training stopped: step 3: the losses have been out of range since step 1" in message, message
    assert "last good checkpoint: none" in message
    assert list_checkpoints(run / "checkpoints") == []
    logged = [json.loads(line)["step"] for line in (run / "stats.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3]


def test_exploding_training_keeps_only_finite_checkpoints(tmp_path):
    """Learning rates at their limit make the GAN diverge (here: an Adam second moment overflows to Inf at step 5);
    the run stops naming it, and every checkpoint left holds finite weights and optimizer moments."""
    from vidsynth.training.checkpoint import non_finite
    out = vidsynth("train", "--preset", "quick", "--outdir", "runs", *TINY, "steps=40", "lr_g=10", "lr_d=10",
                   "max_loss=0", cwd=tmp_path)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "training stopped: step" in out.stderr and "Traceback" not in out.stderr
    run = next((tmp_path / "runs").iterdir())
    kept = list_checkpoints(run / "checkpoints")
    assert kept, out.stderr[-2000:]  # it trains a few steps before the moments overflow
    for path in kept:
        assert non_finite(load_checkpoint(path)) is None, path
    assert f"last good checkpoint: runs/{run.name}/checkpoints/{kept[-1].name}" in out.stderr


def test_non_finite_names_the_bad_optimizer_moment():
    from vidsynth.training.checkpoint import non_finite
    state = {"optimizers": {"generator": {"state": {3: {"exp_avg": torch.zeros(2),
                                                        "exp_avg_sq": torch.tensor([1.0, float("inf")])}}}}}
    assert non_finite(state) == "optimizers.generator.state.3.exp_avg_sq"
    assert non_finite({"a": [torch.zeros(2), torch.ones(1, dtype=torch.long)]}) is None


def test_two_runs_claiming_the_same_number_get_distinct_folders(tmp_path):
    from vidsynth.training.loop import claim_run_dir
    (tmp_path / "00000-mocogan-shapes32").mkdir()  # made by another process between the scan and the mkdir
    assert claim_run_dir(tmp_path, "mocogan-shapes32", 0).name == "00001-mocogan-shapes32"


def test_stale_temp_files_of_dead_writers_are_removed(tmp_path):
    from vidsynth.io import remove_stale_temps, replaced_atomically, temp_path
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = temp_path(tmp_path / "step-0000003.pt", int(dead.stdout))
    stale.write_bytes(b"half")
    alive = temp_path(tmp_path / "config.json", os.getppid())  # a running writer's: kept
    alive.write_text("{")
    other_host = tmp_path / f".model.tmp{int(dead.stdout)}-elsewhere.safetensors"  # its pid means nothing here
    users = [tmp_path / f"notes.tmp{int(dead.stdout)}.txt", tmp_path / "report.tmp2024"]  # not ours
    for path in (other_host, *users):
        path.write_text("x")
    with replaced_atomically(tmp_path / "kept.json") as tmp:
        tmp.write_text("{}")
    assert remove_stale_temps(tmp_path) == [stale]
    assert alive.exists() and other_host.exists() and all(p.exists() for p in users)
    assert (tmp_path / "kept.json").read_text() == "{}"
