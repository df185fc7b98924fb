"""Reading official split files (UCF101, HMDB51): where they are, and their lines."""

from __future__ import annotations

from pathlib import Path

from vidsynth.errors import UserError


def find_annotations(annotations: str | None, root: Path, folder: str, pattern: str, hint: str) -> Path:
    """The split-file folder: ``annotations`` if given, else the first of ``root/<folder>``, ``root/../<folder>``
    and ``root`` holding a file that matches the glob ``pattern``. ``hint`` describes the folder in errors."""
    if annotations:
        path = Path(annotations).expanduser()
        if not any(path.glob(pattern)):
            raise UserError(f"annotations={annotations} holds no {pattern}: pass annotations=<{hint}>")
        return path
    places = (root / folder, root / ".." / folder, root)
    for path in places:
        if any(path.glob(pattern)):
            return path
    raise UserError(f"no {pattern} found in {', '.join(map(str, places))}: pass annotations=<{hint}>")


def read_lines(path: Path) -> list[tuple[int, str]]:
    """``(line number, stripped text)`` of the non-blank lines; tolerates a BOM and Windows line endings."""
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as e:
        raise UserError(f"cannot read split file {path} ({e.strerror}): check annotations= and fold=") from None
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
