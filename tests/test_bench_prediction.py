"""The prediction benchmarks end to end on tiny budgets: Moving MNIST (per-frame MSE/MAE/SSIM/PSNR beside copying
the last frame) and Weizmann (per-frame PSNR/SSIM and FVD of held-out clips beside copying the last frame)."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

from helpers import SHARED

BENCH = Path(__file__).resolve().parents[1] / "bench"


def run(script: str, *args: str, cwd: Path) -> str:
    out = subprocess.run([sys.executable, str(BENCH / script), "--minutes", "0.01", *args], cwd=cwd,
                         env={**os.environ, "VIDSYNTH_CACHE": str(cwd / ".cache")}, capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def row(stdout: str, name: str) -> list[float]:
    """The numbers of the table row that starts with ``name``."""
    line = next(line for line in stdout.splitlines() if line.startswith(name))
    return [float(v) for v in line[len(name):].split()]


def test_moving_mnist_prediction_benchmark(tmp_path):
    stdout = run("prediction_mmnist.py", "--test-size", "20", "--root", str(SHARED / "mnist"), "--batch-size", "2",
                 "--out", str(tmp_path / "p"), cwd=tmp_path)
    assert "10 steps of batch 2" in stdout  # the schedule's minimum
    for metric in ("MSE", "MAE", "SSIM", "PSNR"):
        for name in ("copy last frame", "deterministic"):
            values = row(stdout, f"{name} {metric}")
            assert len(values) == 11 and all(math.isfinite(v) for v in values)  # 10 frames and their mean
    assert row(stdout, "copy last frame MSE")[0] > 0
    assert (tmp_path / "p" / "deterministic.png").read_bytes()[:4] == b"\x89PNG"


def test_weizmann_prediction_benchmark(tmp_path, weizmann):
    stdout = run("prediction_weizmann.py", "--clips", "8", "--root", str(weizmann), "--out", str(tmp_path / "p"),
                 "--set", "batch_size=2", cwd=tmp_path)
    assert "8 clips of 16 frames (stride 2), 8 -> 8" in stdout
    for name in ("copy last frame", "deterministic"):
        psnr, ssim = row(stdout, f"{name} PSNR"), row(stdout, f"{name} SSIM")
        assert len(psnr) == len(ssim) == 9 and all(0 < v < 100 for v in psnr) and all(-1 <= v <= 1 for v in ssim)
    fvd = dict(re.findall(r"(copy last frame|deterministic) ([0-9.]+)", stdout.split("FVD")[-1]))
    assert set(fvd) == {"copy last frame", "deterministic"} and all(float(v) > 0 for v in fvd.values())
    assert (tmp_path / "p" / "prediction.png").read_bytes()[:4] == b"\x89PNG"
