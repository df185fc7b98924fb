"""The README is the contract: it opens with the two set-up commands, and CI runs its test command verbatim."""

from __future__ import annotations

import functools
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_readme_opens_with_two_commands_and_ci_runs_the_second():
    text = (ROOT / "README.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert len(block) == 2, "the README starts with exactly two commands: main job, tests"
    main, tests = block
    assert "vidsynth train --preset quick" in main and "pytest" in tests
    assert tests in (ROOT / ".ci" / "run").read_text().splitlines()
    assert text.index("```bash") < text.index("\n## "), "the commands come before any section"


# settings that make any README training command a few seconds long; on --resume only the step count may change
TINY = ["steps=2", "sample_every=2", "checkpoint_every=2", "log_every=1", "num_samples=2", "batch_size=2",
        "g_channels=8", "d_channels=8", "max_channels=32"]
SHORTER = [(r"\b(fvd|kvd)\d+_", r"\g<1>4_")]  # metrics on 4 clips instead of hundreds
RENDER_TINY = {"--n": "2", "--res": "16", "--frames": "4"}  # render commands: two tiny clips
EXTERNAL = ("root=/", "annotations=/", "root=...", "root=clips/")  # data that is not on this machine


def readme_commands() -> list[str]:
    """Every `vidsynth` command of the README's bash blocks, in order (the last part of a `&&` chain)."""
    text = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            command = line.split(" #")[0].split("&&")[-1].strip()
            if command.startswith(".venv/bin/vidsynth") and not any(e in command for e in EXTERNAL):
                commands.append(command)
    return commands


def readme_python() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_readme_is_short_and_links_resolve():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    for link in re.findall(r"\]\(([^)#]+)", text):
        assert (ROOT / link).exists(), link


@pytest.mark.slow
def test_readme_commands_and_python_run_as_written(tmp_path):
    """Every README shell command that needs no external data, then the Python examples, in a fresh folder beside
    a `shared/` like the project's, with tiny sizes where a command trains."""
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "shared").symlink_to(ROOT.parent / "shared")
    env = {**os.environ, "VIDSYNTH_CACHE": str(tmp_path / "cache")}
    commands = readme_commands()
    assert any("--preset quick" in c for c in commands) and any(" eval " in c for c in commands)
    for command in commands:
        args = shlex.split(command)
        args[0] = str(Path(sys.executable).with_name("vidsynth"))
        if args[1] == "train":
            args += ["steps=3"] if "--resume" in args else TINY
        args = [functools.reduce(lambda a, s: re.sub(*s, a), SHORTER, arg) for arg in args]
        if args[1].startswith("render"):
            args = [RENDER_TINY.get(before, arg) for before, arg in zip([""] + args, args)]
        out = subprocess.run(args, cwd=project, env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, (command, out.stderr[-2000:])
    for code in readme_python():
        out = subprocess.run([sys.executable, "-c", code], cwd=project, env=env, capture_output=True, text=True,
                             timeout=600)
        assert out.returncode == 0, (code, out.stderr[-2000:])
    assert (project / "runs" / "pred.mp4").is_file() and (project / "exported" / "model.safetensors").is_file()
