"""The ``conic-dnn`` command line, run in-process through ``cli.main(argv)``."""

import json

import numpy as np
import pytest

import conic_dnn as cd
from conic_dnn import cli


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
    out = json.loads(capsys.readouterr().out)
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
