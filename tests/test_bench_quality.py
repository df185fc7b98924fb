"""``bench/quality.py`` end to end on a tiny budget: two scored points, the floor and the ceiling, grids, the plot, the
end of long samples."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "quality.py"


def test_quality_benchmark_scores_points_beside_floor_and_ceiling(tmp_path):
    out = subprocess.run([sys.executable, str(BENCH), "--preset", "quick", "--minutes", "0.1", "--every", "0.05",
                          "--clips", "8", "--frames", "10", "--long", "20", "--out", str(tmp_path / "q"), "num_frames=10",
                          "batch_size=2", "sample_every=1000"],
                         cwd=tmp_path, env={**os.environ, "VIDSYNTH_CACHE": str(tmp_path / ".cache")},
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads((tmp_path / "q" / "results.json").read_text())
    assert results["metrics"] == ["fvd8_10f", "kvd8_10f"]
    points = results["points"]
    assert [p["minutes"] for p in points] == [0.05, 0.1]
    assert 0 < points[0]["step"] < points[1]["step"]  # the second point continues the first run
    for name in results["metrics"]:
        assert all(math.isfinite(p[name]) and p[name] > 0 for p in points)
        assert 0 < results["floor"][name] < results["ceiling"][name]  # two halves of the data beat noise
    assert "fvd8_10f@10-19" not in points[0] and math.isfinite(points[1]["fvd8_10f@10-19"])  # the last point only
    assert (tmp_path / "q" / "point-0.1min-long.mp4").is_file()
    for minutes in ("0.05", "0.1"):
        assert (tmp_path / "q" / f"point-{minutes}min.png").is_file()
        assert (tmp_path / "q" / f"point-{minutes}min.mp4").is_file()
    assert (tmp_path / "q" / "fvd.png").read_bytes()[:4] == b"\x89PNG"
