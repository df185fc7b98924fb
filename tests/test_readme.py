"""The README is the contract: it opens with the two set-up commands, and CI runs its test command verbatim."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_opens_with_two_commands_and_ci_runs_the_second():
    text = (ROOT / "README.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert len(block) == 2, "the README starts with exactly two commands: main job, tests"
    main, tests = block
    assert "vidsynth train --preset quick" in main and "pytest" in tests
    assert tests in (ROOT / ".ci" / "run").read_text().splitlines()
    assert text.index("```bash") < text.index("\n## "), "the commands come before any section"
