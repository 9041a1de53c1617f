"""The ``conic-dnn`` command line, run in-process through ``cli.main(argv)``."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import conic_dnn as cd
from conic_dnn import cli

from .conftest import strict_loads


@pytest.fixture
def data_npz(tmp_path, rng):
    path = tmp_path / "data.npz"
    np.savez(path, X=rng.normal(size=(4, 2)), Y=rng.normal(size=(4, 1)))
    return path


@pytest.fixture
def data_csv(tmp_path, rng):
    path = tmp_path / "data.csv"
    M = np.hstack([rng.normal(size=(4, 2)), rng.normal(size=(4, 1))])
    np.savetxt(path, M, delimiter=",", header="x1,x2,y", comments="")
    return path


def test_demo_json(capsys):
    assert cli.main(["demo", "--json"]) == 0
    out = strict_loads(capsys.readouterr().out)
    assert out["deep"]["lower_bound"] is None and isinstance(out["warnings"], list)
    two = out["two_layer"]
    assert two["certified"] and two["gap"] <= 1e-6 * two["objective"]
    assert two["lower_bound"] <= two["objective"]
    assert out["deep"]["objective"] <= out["deep"]["history"][0]
    assert len(out["deep"]["certificate"]["layers"]) == 2


def test_demo_text_mentions_objective(capsys):
    assert cli.main(["demo", "--quiet"]) == 0
    assert "objective" in capsys.readouterr().out


@pytest.mark.parametrize("fmt", ["npz", "csv"])
def test_solve_writes_result_and_network(fmt, data_npz, data_csv, tmp_path, capsys):
    data = data_npz if fmt == "npz" else data_csv
    out = tmp_path / "out"
    assert cli.main(["solve", str(data), "--lam", "0.05", "--out", str(out), "--quiet"]) == 0
    res = json.loads((out / "result.json").read_text())
    net = cd.Network.load(out / "network.npz")
    X, Y = cli.load_data(data)
    p = cd.Problem(X, Y, 2, 0.05)
    # independent check: the saved network's own forward pass gives the reported objective
    assert net.loss(p) == pytest.approx(res["objective"], rel=1e-12)
    assert res["certified"] and res["lower_bound"] <= res["objective"]
    assert set(res["timings"]) == {"compile_time", "solver_time"}


def test_prune_and_certify_roundtrip(data_npz, tmp_path, capsys, rng):
    X, Y = cli.load_data(data_npz)
    p = cd.Problem(X, Y, 2, 0.05)
    wide = cd.Network((rng.normal(size=(60, 2)), rng.normal(size=(1, 60)) / 10), "relu")
    wpath = wide.save(tmp_path / "wide.npz")
    pruned_path = tmp_path / "pruned.npz"
    code = cli.main(["prune", str(wpath), str(data_npz), "--lam", "0.05", "--out",
                     str(pruned_path), "--json"])
    assert code == 0
    rep = json.loads(capsys.readouterr().out)
    pruned = cd.Network.load(pruned_path)
    assert pruned.widths[0] <= 20 and rep["widths_after"] == list(pruned.widths)
    assert rep["loss_after"] == pytest.approx(pruned.loss(p), rel=1e-12)
    assert rep["loss_after"] <= rep["loss_before"]
    # a random network is not optimal: certify exits 1 and names an improving neuron
    assert cli.main(["certify", str(wpath), str(data_npz), "--lam", "0.05", "--json"]) == 1
    cert = json.loads(capsys.readouterr().out)
    assert not cert["certified"]
    # the exact optimum is certified: exit 0
    best = cd.solve(p).network.save(tmp_path / "best.npz")
    assert cli.main(["certify", str(best), str(data_npz), "--lam", "0.05", "--quiet"]) == 0


@pytest.mark.parametrize("argv, message", [
    (["solve", "missing.npz", "--lam", "0.1"], "not found"),
    (["solve", "DATA", "--lam", "-1"], "lam"),
    (["solve", "DATA", "--lam", "0.1", "--activation", "sigmoid"], "activation"),
    (["solve", "DATA", "--lam", "0.1", "--solver", "GUROBI"], "solver"),
    (["solve", "DATA", "--lam", "0.1", "--method", "magic"], "method"),
    (["solve", "BAD", "--lam", "0.1"], "expected arrays X and Y"),
    (["solve", "TXT", "--lam", "0.1"], "expected a .npz or .csv"),
    (["prune", "missing.npz", "DATA"], "not found"),
])
def test_errors_give_one_line_and_exit_2(argv, message, data_npz, tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    np.savez(bad, A=np.ones(3))
    txt = tmp_path / "data.txt"
    txt.write_text("1,2\n")
    subs = {"DATA": str(data_npz), "BAD": str(bad), "TXT": str(txt)}
    argv = [subs.get(a, a) for a in argv]
    assert cli.main(argv + ["--out", str(tmp_path / "o")] if argv[0] == "solve" else argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_bad_shapes_exit_2(tmp_path, capsys):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.ones((4, 2)), Y=np.ones((3, 1)))
    assert cli.main(["solve", str(path), "--lam", "0.1", "--out", str(tmp_path)]) == 2
    assert "Y" in capsys.readouterr().err


def test_usage_error_exit_2(capsys):
    assert cli.main(["solve"]) == 2
    assert cli.main(["frobnicate"]) == 2


def test_path_matches_solve_per_lam(data_npz, capsys):
    assert cli.main(["path", str(data_npz), "--lams", "0.05,0.005", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["path"]
    X, Y = cli.load_data(data_npz)
    assert [r["lam"] for r in rows] == [0.05, 0.005]
    for r in rows:
        ref = cd.solve(cd.Problem(X, Y, 2, r["lam"]))
        assert r["certified"] and r["lower_bound"] <= r["objective"]
        assert r["objective"] == pytest.approx(ref.objective, rel=2e-6)
    assert cli.main(["path", str(data_npz), "--lams", "0.05", "--quiet"]) == 0


@pytest.mark.parametrize("lams, message", [
    ("0.1,x", "--lams: expected comma-separated numbers, got '0.1,x'"),
    (",", "--lams: expected comma-separated numbers"),
    ("0.1,-1", "lams: expected a non-empty sequence of finite numbers > 0"),
])
def test_path_bad_lams_exit_2(lams, message, data_npz, capsys):
    assert cli.main(["path", str(data_npz), "--lams", lams]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


# --- the problem record: certify / prune read it --------------------------------------------
def _one_line_err(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.fixture
def solved_dir(data_npz, tmp_path, capsys):
    out = tmp_path / "D"
    assert cli.main(["solve", str(data_npz), "--lam", "0.1", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    return out


def test_certify_without_flags_uses_the_record(solved_dir, data_npz, capsys):
    res = strict_loads((solved_dir / "result.json").read_text())
    assert res["problem"]["lam"] == 0.1 and res["problem"]["loss"] == "mse"
    assert cli.main(["certify", str(solved_dir / "network.npz"), str(data_npz), "--json"]) == 0
    cert = strict_loads(capsys.readouterr().out)
    assert cert["certified"] and cert["problem"]["lam"] == 0.1 and cert["problem"]["record"]
    assert cert["objective"] == pytest.approx(res["objective"], rel=1e-12)
    # independent check: the problem at lam = 0.1 gives the network that loss
    X, Y = cli.load_data(data_npz)
    net = cd.Network.load(solved_dir / "network.npz")
    assert net.loss(cd.Problem(X, Y, 2, 0.1)) == pytest.approx(res["objective"], rel=1e-12)


def test_prune_without_flags_uses_the_record(solved_dir, data_npz, tmp_path, capsys):
    res = strict_loads((solved_dir / "result.json").read_text())
    out = tmp_path / "p.npz"
    assert cli.main(["prune", str(solved_dir / "network.npz"), str(data_npz), "--out", str(out),
                     "--json"]) == 0
    rep = strict_loads(capsys.readouterr().out)
    assert rep["loss_before"] == pytest.approx(res["objective"], rel=1e-12)
    assert rep["problem"]["lam"] == 0.1 and rep["warnings"] == []
    pruned = cd.Network.load(out)
    assert pruned.problem_record.lam == 0.1 and "prune:caratheodory" in pruned.problem_record.method
    # the pruned network, certified with no flags either
    assert cli.main(["certify", str(out), str(data_npz), "--quiet"]) == 0


@pytest.mark.parametrize("flags, message", [
    (["--lam", "0.2"], "--lam 0.2 contradicts the network's record (lam = 0.1)"),
    (["--loss", "huber"], "--loss huber contradicts the network's record (loss = mse)"),
    (["DATA2"], "X differs (sha256) from the data the network was solved on"),
])
@pytest.mark.parametrize("command", ["certify", "prune"])
def test_contradicting_the_record_exits_2_unless_force(command, flags, message, solved_dir,
                                                       data_npz, tmp_path, rng, capsys):
    other = tmp_path / "other.npz"
    np.savez(other, X=rng.normal(size=(4, 2)), Y=rng.normal(size=(4, 1)))
    data = str(other) if flags == ["DATA2"] else str(data_npz)
    flags = [] if flags == ["DATA2"] else flags
    argv = [command, str(solved_dir / "network.npz"), data, *flags]
    if command == "prune":
        argv += ["--out", str(tmp_path / "p.npz")]
    assert cli.main(argv + ["--quiet"]) == 2
    err = _one_line_err(capsys)
    assert message in err and "--force" in err
    assert not (tmp_path / "p.npz").exists()
    assert cli.main(argv + ["--quiet", "--force"]) in (0, 1)  # runs: certified or not


@pytest.mark.parametrize("flags, message", [
    (["--activation", "abs"], "the network's activation is relu"),
    (["--depth", "3"], "the network has depth 2"),
    (["--bias", "1"], "the network was built with bias 0"),
])
def test_structural_flags_cannot_be_forced(flags, message, solved_dir, data_npz, capsys):
    argv = ["certify", str(solved_dir / "network.npz"), str(data_npz), *flags, "--force"]
    assert cli.main(argv) == 2
    assert message in _one_line_err(capsys)


def test_network_without_record_needs_lam(data_npz, tmp_path, rng, capsys):
    net = cd.Network((rng.normal(size=(3, 2)), rng.normal(size=(1, 3)))).save(tmp_path / "n.npz")
    assert cli.main(["certify", str(net), str(data_npz)]) == 2
    assert "--lam: required" in _one_line_err(capsys)


# --- strict JSON on every command --------------------------------------------------------------
def test_every_command_prints_strict_json(solved_dir, data_npz, tmp_path, capsys):
    net = str(solved_dir / "network.npz")
    runs = [["solve", str(data_npz), "--lam", "0.1", "--out", str(tmp_path / "J")],
            ["solve", str(data_npz), "--lam", "0.1", "--depth", "3", "--max-sweeps", "2",
             "--out", str(tmp_path / "J3")],
            ["prune", net, str(data_npz), "--out", str(tmp_path / "pj.npz")],
            ["certify", net, str(data_npz)],
            ["path", str(data_npz), "--lams", "0.1,0.01"]]
    for argv in runs:
        assert cli.main(argv + ["--json", "--quiet"]) in (0, 1), argv
        d = strict_loads(capsys.readouterr().out)
        assert isinstance(d["warnings"], list), argv
    # depth 3 has no global bound: null, not -Infinity, in stdout and in result.json
    assert strict_loads((tmp_path / "J3" / "result.json").read_text())["lower_bound"] is None


# --- file safety ---------------------------------------------------------------------------------
def test_existing_outputs_are_not_overwritten_without_force(solved_dir, data_npz, capsys):
    before = (solved_dir / "result.json").read_bytes()
    argv = ["solve", str(data_npz), "--lam", "0.2", "--out", str(solved_dir), "--quiet"]
    assert cli.main(argv) == 2
    assert "exists; pass --force" in _one_line_err(capsys)
    assert (solved_dir / "result.json").read_bytes() == before
    assert cli.main(argv + ["--force"]) == 0
    assert strict_loads((solved_dir / "result.json").read_text())["problem"]["lam"] == 0.2
    assert cd.load_result(solved_dir).problem_record.lam == 0.2


@pytest.mark.parametrize("target", ["data", "network"])
def test_never_writes_to_an_input_even_with_force(target, solved_dir, data_npz, capsys):
    net = solved_dir / "network.npz"
    out = data_npz if target == "data" else net
    before = out.read_bytes()
    assert cli.main(["prune", str(net), str(data_npz), "--out", str(out), "--force"]) == 2
    assert "is one of the inputs" in _one_line_err(capsys)
    assert out.read_bytes() == before


def test_solve_refuses_to_overwrite_its_data(tmp_path, rng, capsys):
    d = tmp_path / "network.npz"  # a data file named like the output
    np.savez(d, X=rng.normal(size=(4, 2)), Y=rng.normal(size=(4, 1)))
    before = d.read_bytes()
    assert cli.main(["solve", str(d), "--lam", "0.1", "--out", str(tmp_path), "--force"]) == 2
    assert "is one of the inputs" in _one_line_err(capsys)
    assert d.read_bytes() == before


def _listing(d: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_interrupted_network_write_leaves_the_old_pair(solved_dir, data_npz, monkeypatch,
                                                       capsys):
    old = _listing(solved_dir)

    def broken_savez(fh, **arrays):
        fh.write(b"PK\x03\x04 half an archive")
        raise OSError("No space left on device")

    monkeypatch.setattr(np, "savez", broken_savez)
    argv = ["solve", str(data_npz), "--lam", "0.2", "--out", str(solved_dir), "--force"]
    assert cli.main(argv + ["--quiet"]) == 3
    assert "No space left on device" in _one_line_err(capsys)
    assert _listing(solved_dir) == old  # same files, same bytes, no temp file, no new result
    fresh = solved_dir.parent / "fresh"
    assert cli.main(["solve", str(data_npz), "--lam", "0.2", "--out", str(fresh), "--quiet"]) == 3
    assert list(fresh.iterdir()) == []  # nothing half-written


def test_failed_result_write_is_detected_not_silent(solved_dir, data_npz, monkeypatch, capsys):
    from conic_dnn.core import result as result_module

    real = result_module.atomic_write

    def fail_json(path, write, **kw):
        if Path(path).suffix == ".json":
            raise OSError("No space left on device")
        return real(path, write, **kw)

    monkeypatch.setattr(result_module, "atomic_write", fail_json)
    argv = ["solve", str(data_npz), "--lam", "0.2", "--out", str(solved_dir), "--force"]
    assert cli.main(argv + ["--quiet"]) == 3
    _one_line_err(capsys)
    # the network (written first) is new; the old result no longer matches it and says so
    with pytest.raises(ValueError, match="changed since"):
        cd.load_result(solved_dir)
    assert not [p for p in solved_dir.iterdir() if p.name.endswith(".tmp")]


# --- exit codes -------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [["solve"], ["frobnicate"], ["solve", "DATA", "--lam", "x"],
                                  ["certify", "NET"], ["solve", "DATA", "--lam", "0.1",
                                                       "--time-limit", "soon"]])
def test_usage_errors_are_one_line_exit_2(argv, data_npz, capsys):
    argv = [str(data_npz) if a == "DATA" else a for a in argv]
    assert cli.main(argv) == 2
    assert "error" in _one_line_err(capsys)


def test_solver_failure_exits_3(data_npz, tmp_path, monkeypatch, capsys):
    def fail(*a, **k):
        raise cd.SolverFailedError("layer 1: every solver failed (CLARABEL: infeasible)",
                                   solver="CLARABEL", status="infeasible")

    monkeypatch.setattr(cd, "solve", fail)
    assert cli.main(["solve", str(data_npz), "--lam", "0.1", "--out", str(tmp_path / "o")]) == 3
    assert "CLARABEL: infeasible" in _one_line_err(capsys)
    assert not (tmp_path / "o").exists() or list((tmp_path / "o").iterdir()) == []


def test_ctrl_c_exits_130_without_traceback(data_npz, monkeypatch, capsys):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cd, "solve_path", interrupted)
    assert cli.main(["path", str(data_npz), "--lams", "0.1"]) == 130
    assert "interrupted" in _one_line_err(capsys)


def test_closed_stdout_pipe_gives_no_traceback(data_npz):
    env = dict(os.environ, PYTHONPATH=str(Path(cli.__file__).parents[1]))
    proc = subprocess.Popen([sys.executable, "-m", "conic_dnn", "path", str(data_npz),
                             "--lams", "0.1,0.01", "--json", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # the reader is gone, like `| head` after its lines
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert proc.returncode == 141


def test_time_limit_and_progress_are_passed(data_npz, tmp_path, monkeypatch, capsys):
    seen = {}
    real_solve, real_path = cd.solve, cd.solve_path

    def spy_solve(p, **kw):
        seen["solve"] = kw
        return real_solve(p, **kw)

    def spy_path(p, lams, **kw):
        seen["path"] = kw
        return real_path(p, lams, **kw)

    monkeypatch.setattr(cd, "solve", spy_solve)
    monkeypatch.setattr(cd, "solve_path", spy_path)
    assert cli.main(["solve", str(data_npz), "--lam", "0.1", "--out", str(tmp_path / "a"),
                     "--time-limit", "30"]) == 0
    assert seen["solve"]["time_limit"] == 30.0 and seen["solve"]["progress"] is True
    assert cli.main(["path", str(data_npz), "--lams", "0.1", "--time-limit", "20",
                     "--quiet"]) == 0
    assert seen["path"]["time_limit"] == 20.0 and seen["path"]["progress"] is False
    capsys.readouterr()
    assert cli.main(["solve", str(data_npz), "--lam", "0.1", "--out", str(tmp_path / "b"),
                     "--time-limit", "-1"]) == 2
    assert "time_limit" in _one_line_err(capsys)


# --- loading guards ---------------------------------------------------------------------------
@pytest.mark.parametrize("X, message", [
    (np.array([[1, 2], [3, 4], [5, 6], [7, 8]], dtype="timedelta64[s]"), "timedelta64"),
    (np.array([["2020-01-01"] * 2] * 4, dtype="datetime64[D]"), "datetime64"),
    (np.ones((4, 2)) * (1 + 1j), "complex128"),
    (np.array([[{}] * 2] * 4, dtype=object), "dtype object"),
], ids=["timedelta", "datetime", "complex", "object"])
def test_exotic_data_dtypes_exit_2(X, message, tmp_path, capsys):
    path = tmp_path / "x.npz"
    np.savez(path, X=X, Y=np.ones((4, 1)))
    assert cli.main(["solve", str(path), "--lam", "0.1", "--out", str(tmp_path / "o")]) == 2
    assert message in _one_line_err(capsys)


def test_csv_with_a_non_numeric_entry_exits_2(tmp_path, capsys):
    path = tmp_path / "d.csv"
    path.write_text("x1,x2,y\n1,2,3\n4,five,6\n7,8,9\n")
    assert cli.main(["solve", str(path), "--lam", "0.1", "--out", str(tmp_path / "o")]) == 2
    assert "non-numeric or missing entry (data row 2, column 2" in _one_line_err(capsys)


def test_oversized_npz_is_refused(tmp_path, capsys):
    path = tmp_path / "big.npz"
    np.savez_compressed(path, X=np.zeros((2000, 500)), Y=np.zeros((2000, 1)))
    with pytest.raises(ValueError, match="expand"):
        cli.load_data(path, max_bytes=1_000_000)
    bad = tmp_path / "gap.npz"
    np.savez(bad, W0=np.ones((3, 2)), W2=np.ones((1, 3)))
    assert cli.main(["certify", str(bad), str(path), "--lam", "0.1"]) == 2
    assert "missing W1" in _one_line_err(capsys)
