"""The GPU benchmark's own path, run on a CPU with a one-layer model so that it does not rot
between the sessions that are lent a GPU (its figures here mean nothing)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[1] / "eval" / "bench_gpu.py"


def test_exports_a_skeleton_and_benchmarks_it(tmp_path):
    skeleton, out = tmp_path / "skeleton", tmp_path / "figures.json"
    subprocess.run([sys.executable, str(SCRIPT), "--export", str(skeleton)], check=True)
    assert not list(skeleton.glob("*.safetensors"))  # no weights travel
    assert sum(f.stat().st_size for f in skeleton.iterdir()) < 16 * 2**20
    subprocess.run([sys.executable, str(SCRIPT), "--skeleton", str(skeleton), "--layers", "1", "--n", "4",
                    "--answer-tokens", "16", "--engines", "transformers,transformers+lora", "--out", str(out)],
                   check=True, capture_output=True)
    rows = json.loads(out.read_text())["rows"]
    assert set(rows) == {"decode (bare model, no schema, batches of 8)", "transformers", "transformers+lora"}
    assert all(r["items_per_s"] > 0 and r["out_tokens_per_s"] > 0 for r in rows.values())
