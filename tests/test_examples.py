"""Run every example script (``examples/NN_*.py``) in quick mode, check its figure (written to
``examples/figures/quick/``, never over the full figures) and the key numbers it prints, which
are what README.md says about the examples."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("[0-9][0-9]_*.py"))
_RUNS: dict = {}


def run_quick(script: Path):
    """(stdout, start time, saved figure path) of one quick-mode run, cached per session."""
    if script.name not in _RUNS:
        env = dict(os.environ, CONIC_DNN_QUICK="1", MPLBACKEND="Agg", OPENBLAS_NUM_THREADS="1",
                   PYTHONPATH=str(ROOT))
        start = time.time()
        proc = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{script.name} failed:\n{proc.stdout}\n{proc.stderr}"
        saved = [line for line in proc.stdout.splitlines() if line.startswith("saved ")]
        assert saved, f"{script.name}: expected a final line 'saved <path>', got:\n{proc.stdout}"
        path = Path(saved[-1][len("saved "):].strip())
        _RUNS[script.name] = (proc.stdout, start, path if path.is_absolute() else ROOT / path)
    return _RUNS[script.name]


def _script(prefix: str) -> Path:
    (match,) = [p for p in EXAMPLES if p.name.startswith(prefix)]
    return match


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_and_saves_its_figure(script):
    _, start, path = run_quick(script)
    assert path.suffix == ".png", f"{script.name}: expected a PNG, got {path}"
    assert path.parent == ROOT / "examples" / "figures" / "quick", \
        f"{script.name}: quick mode must not write over the full figures, wrote {path}"
    assert path.is_file() and path.stat().st_size > 0, f"{script.name}: {path} missing"
    assert path.stat().st_mtime >= start - 1, f"{script.name}: {path} was not written by this run"


def test_examples_found():
    assert len(EXAMPLES) >= 8, f"expected the example scripts, found {EXAMPLES}"


def test_02_no_training_run_beats_the_bound():
    out, _, _ = run_quick(_script("02_"))
    assert "No training run goes below the lower bound" in out
    assert "below the lower bound (a bug!)" not in out


def test_05_plateau_starts_exactly_at_n2_over_4():
    """README: the tight example's plateau starts exactly at width N^2/4."""
    out, _, _ = run_quick(_script("05_"))
    rows = re.findall(r"width\s+(\d+): best training loss / optimum - 1 =\s+(\S+)\s*(<- N\^2/4)?",
                      out)
    assert rows
    blocks, cur = [], []
    for w, e, mark in rows:
        if cur and int(w) < int(cur[-1][0]):
            blocks.append(cur)
            cur = []
        cur.append((int(w), float(e), bool(mark)))
    blocks.append(cur)
    for block in blocks:
        (tight,) = [w for w, _, m in block if m]
        # below N^2/4 training stays a visible distance above the optimum; from N^2/4 on it
        # reaches it to L-BFGS accuracy (1e-6 relative, far below the 1e-3 .. 1e2 excess)
        assert all(e > 1e-4 for w, e, _ in block if w < tight), block
        assert all(e < 1e-6 for w, e, _ in block if w >= tight), block


def test_07_path_certified_and_widths_below_n2_over_4():
    out, _, _ = run_quick(_script("07_"))
    m = re.search(r"all (\d+) points certified; pruned widths along the path: (\d+)-(\d+) "
                  r"neurons \(N\^2/4 = (\d+)", out)
    assert m, out
    _, lo, hi, tight = map(int, m.groups())
    assert 1 <= lo <= hi < tight


def test_08_grid_search_reports_accuracy():
    out, _, _ = run_quick(_script("08_"))
    assert re.search(r"best lam = \S+", out)
    acc = float(re.search(r"test accuracy = (\S+)", out).group(1))
    assert 0.7 <= acc <= 1.0  # README: a useful classifier on make_moons, not a claim of 1.0
