"""Smoke test of the benchmark scripts: each runs in ``--quick`` mode and writes its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = ["two_layer", "deep", "solvers", "pruning", "size", "resolve", "sphere_pricing",
           "output_range"]


@pytest.mark.slow
@pytest.mark.parametrize("name", SCRIPTS)
def test_benchmark_quick(name, tmp_path):
    """``python benchmarks/<name>.py --quick`` exits with 0 and writes ``<name>_quick.json``."""
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{name}.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=BENCHMARKS.parent)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    path = tmp_path / f"{name}_quick.json"
    assert path.exists()
    assert not (tmp_path / f"{name}.json").exists()
    data = json.loads(path.read_text())
    assert data["benchmark"] == name and data["quick"] is True
    assert data["rows"] and data["machine"]["cpu_count"] >= 1


@pytest.mark.slow
def test_sparsity_quick(tmp_path):
    """``python benchmarks/sparsity.py --quick`` exits with 0 and writes ``sparsity_quick.json``
    (and its plot) with one row per hidden layer."""
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "sparsity.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=BENCHMARKS.parent)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    path = tmp_path / "sparsity_quick.json"
    assert path.exists()
    assert not (tmp_path / "sparsity.json").exists()
    assert (tmp_path / "sparsity_quick.png").exists()
    data = json.loads(path.read_text())
    assert data["benchmark"] == "sparsity" and data["quick"] is True
    assert data["rows"] and data["machine"]["cpu_count"] >= 1
    for row in data["rows"]:
        assert row["caratheodory_bound"] == row["N"] * (row["N"] + 1)
        assert 0 < row["needed_approx"] <= row["width"]


@pytest.mark.slow
def test_column_generation_quick(tmp_path):
    """``python benchmarks/column_generation.py --quick`` exits with 0 and writes
    ``column_generation_quick.json`` with certified rows that agree with the pattern program."""
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "column_generation.py"), "--quick", "--out",
         str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=BENCHMARKS.parent)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    path = tmp_path / "column_generation_quick.json"
    assert path.exists()
    assert not (tmp_path / "column_generation.json").exists()
    data = json.loads(path.read_text())
    assert data["benchmark"] == "column_generation" and data["quick"] is True
    assert data["rows"] and data["machine"]["cpu_count"] >= 1
    for row in data["rows"]:
        assert "error" not in row and row["certified"]
        assert abs(row["objective_diff"]) <= 1e-5


TIMING = {"train_s", "report_s", "solve_s", "plateau_s"}


@pytest.mark.slow
def test_sparsity_jobs_same_rows(tmp_path):
    """``sparsity.py --quick --jobs 2`` (two loky processes) writes the same rows, in the same
    order, as ``--jobs 1``, apart from the timing fields; the config records jobs and backend."""
    data = {}
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}"
        proc = subprocess.run(
            [sys.executable, str(BENCHMARKS / "sparsity.py"), "--quick", "--jobs", str(jobs),
             "--out", str(out)], capture_output=True, text=True, timeout=300,
            cwd=BENCHMARKS.parent)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
        data[jobs] = json.loads((out / "sparsity_quick.json").read_text())
        assert data[jobs]["config"]["jobs"] == jobs
        assert data[jobs]["config"]["backend"] == "loky"
    for key in ("rows", "exact_rows"):
        one, two = ([{k: v for k, v in r.items() if k not in TIMING} for r in data[j][key]]
                    for j in (1, 2))
        assert one and one == two


def test_sparsity_scheduler_needs_dask(tmp_path):
    """``--scheduler`` without the optional extra ``distributed`` exits with 2 and one line
    naming the extra, before any computation (nothing written)."""
    try:
        import dask.distributed  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("dask.distributed is installed")
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "sparsity.py"), "--quick", "--scheduler",
         "tcp://127.0.0.1:1", "--out", str(tmp_path)], capture_output=True, text=True,
        timeout=120, cwd=BENCHMARKS.parent)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("--scheduler needs the optional extra 'distributed' "
                                   "(pip install 'conic-dnn[distributed]')")
    assert proc.stdout == "" and not any(tmp_path.iterdir())


def _children(pid: int) -> set[int]:
    """Descendant process ids of ``pid`` (from /proc; Linux)."""
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == p:
                child = int(stat.parent.name)
                if child not in out:
                    out.add(child)
                    todo.append(child)
    return out


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_sparsity_sigterm_leaves_no_workers(tmp_path):
    """SIGTERM during ``sparsity.py --jobs 2`` ends the run and its loky workers with it."""
    import os
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, str(BENCHMARKS / "sparsity.py"), "--quick", "--jobs", "2",
         "--out", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        cwd=BENCHMARKS.parent)
    workers: set[int] = set()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 120 and proc.poll() is None and len(workers) < 2:
        workers = _children(proc.pid)
        time.sleep(0.2)
    if proc.poll() is not None:
        pytest.skip("the quick run finished before its workers could be observed")
    assert workers, "no worker processes appeared"
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)
    deadline = time.monotonic() + 30
    alive = workers
    while alive and time.monotonic() < deadline:
        alive = {w for w in alive if Path(f"/proc/{w}").exists()
                 and "Z" not in Path(f"/proc/{w}/stat").read_text().rsplit(")", 1)[1][:3]}
        time.sleep(0.2)
    assert not alive, f"workers still running after SIGTERM: {sorted(alive)}"


@pytest.mark.slow
def test_pilanci_ergen_quick(tmp_path):
    """``python benchmarks/pilanci_ergen.py --quick``: every exact row certified, its objective
    within 1e-6 (relative) of the Pilanci-Ergen program's and certified again by the timed
    certificate alone (one pricing at the returned network), the auto rows carry their loss."""
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "pilanci_ergen.py"), "--quick", "--out",
         str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=BENCHMARKS.parent)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    data = json.loads((tmp_path / "pilanci_ergen_quick.json").read_text())
    assert data["benchmark"] == "pilanci_ergen" and data["quick"] is True
    for row in data["rows"]:
        assert row["certified"] and abs(row["objective_diff"]) <= 1e-6
        assert -1e-12 <= row["cert_rel_gap"] <= 1e-6 and row["cert_time"] > 0  # (weak duality)
    assert data["auto"] and all(r["loss"] == "mse" for r in data["auto"])
    assert data["summary"]["pe_speedup_by_N"] and data["summary"]["pe_over_certificate_by_N"]
