"""Run every example script (``examples/NN_*.py``) in quick mode and check its figure."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_and_saves_its_figure(script):
    env = dict(os.environ, CONIC_DNN_QUICK="1", MPLBACKEND="Agg", OPENBLAS_NUM_THREADS="1")
    start = time.time()
    proc = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{script.name} failed:\n{proc.stdout}\n{proc.stderr}"
    saved = [line for line in proc.stdout.splitlines() if line.startswith("saved ")]
    assert saved, f"{script.name}: expected a final line 'saved <path>', got:\n{proc.stdout}"
    path = Path(saved[-1][len("saved "):].strip())
    if not path.is_absolute():
        path = ROOT / path
    assert path.suffix == ".png", f"{script.name}: expected a PNG, got {path}"
    assert path.is_file() and path.stat().st_size > 0, f"{script.name}: {path} missing"
    assert path.stat().st_mtime >= start - 1, f"{script.name}: {path} was not written by this run"


def test_examples_found():
    assert len(EXAMPLES) >= 5, f"expected the example scripts, found {EXAMPLES}"
