import numpy as np
import pytest

import conic_dnn as cd

from .conftest import random_weights


def test_network_basics_and_io(tmp_path, rng):
    W = random_weights(rng, 3, (5, 4), 2, bias=0.5)
    net = cd.Network(tuple(W), cd.leaky_relu(0.2), bias=0.5)
    assert net.widths == (5, 4) and net.depth == 3 and net.input_dim == 3
    X = rng.normal(size=(6, 3))
    out = net.predict(X)
    assert out.shape == (6, 2)
    path = net.save(tmp_path / "net.npz")
    back = cd.Network.load(path)
    assert back.activation.b == pytest.approx(0.2) and back.bias == 0.5
    np.testing.assert_array_equal(back.predict(X), out)
    p = cd.Problem(X, rng.normal(size=(6, 2)), 3, 0.1, activation=cd.leaky_relu(0.2), bias=0.5)
    assert net.loss(p) == pytest.approx(cd.loss_parameters(p, W))
    assert net.min_norm(p).loss(p) <= net.loss(p) * (1 + 1e-12)


def test_zero_width_network(rng):
    net = cd.Network((np.zeros((0, 3)), np.zeros((2, 0))), "relu")
    assert net.widths == (0,)
    np.testing.assert_array_equal(net.predict(rng.normal(size=(4, 3))), np.zeros((4, 2)))


def test_network_validation(tmp_path):
    with pytest.raises(ValueError, match=r"weights\[1\]: expected 4 columns"):
        cd.Network((np.ones((4, 3)), np.ones((1, 5))))
    with pytest.raises(ValueError, match="shape"):
        cd.Network((np.ones((4, 3)), np.ones((1, 4)))).predict(np.ones((2, 2)))
    with pytest.raises(FileNotFoundError):
        cd.Network.load(tmp_path / "missing.npz")


def test_save_records_the_problem_and_load_reads_it(tmp_path, rng):
    X, Y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    p = cd.Problem(X, Y, 3, 0.1, activation=cd.leaky_relu(0.2), loss=cd.Huber(0.3), bias=0.5)
    net = cd.Network(tuple(random_weights(rng, 3, (5, 4), 2, bias=0.5)), cd.leaky_relu(0.2),
                     bias=0.5)
    assert net.problem_record is None
    back = cd.Network.load(net.save(tmp_path / "net.npz", p, method="given"))
    rec = back.problem_record
    assert rec == cd.ProblemRecord.from_problem(p, "given")
    assert (rec.lam, rec.loss_params, rec.depth, rec.bias) == (0.1, {"delta": 0.3}, 3, 0.5)
    # the record travels with the network through a second save
    again = cd.Network.load(back.save(tmp_path / "again.npz"))
    assert again.problem_record == rec
    with np.load(tmp_path / "net.npz") as f:  # plain numpy reads the file too
        assert int(f["format_version"]) == 1 and "problem_record" in f.files
    with pytest.raises(FileExistsError):
        net.save(tmp_path / "net.npz", overwrite=False)


def test_save_refuses_a_record_of_another_problem(tmp_path, rng):
    X, Y = rng.normal(size=(6, 3)), rng.normal(size=(6, 1))
    net = cd.Network((rng.normal(size=(4, 3)), rng.normal(size=(1, 4))))
    with pytest.raises(ValueError, match="depth 2 != 3"):
        net.save(tmp_path / "n.npz", cd.Problem(X, Y, 3, 0.1))
    with pytest.raises(ValueError, match="activation slopes"):
        net.save(tmp_path / "n.npz", cd.Problem(X, Y, 2, 0.1, activation="abs"))
    assert not (tmp_path / "n.npz").exists()


def _write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_load_refuses_gaps_bad_dtypes_and_huge_files(tmp_path, rng):
    gap = _write_npz(tmp_path / "gap.npz", W0=np.ones((3, 2)), W2=np.ones((1, 3)))
    with pytest.raises(ValueError, match="without gaps, missing W1"):
        cd.Network.load(gap)
    cplx = _write_npz(tmp_path / "c.npz", W0=np.ones((3, 2)) * 1j, W1=np.ones((1, 3)))
    with pytest.raises(ValueError, match="'W0' has dtype complex128"):
        cd.Network.load(cplx)
    big = tmp_path / "big.npz"
    np.savez_compressed(big, W0=np.zeros((500, 500)), W1=np.zeros((1, 500)))
    with pytest.raises(ValueError, match="expand"):
        cd.Network.load(big, max_bytes=100_000)
    assert cd.Network.load(big).widths == (500,)
    depth = _write_npz(tmp_path / "d.npz", W0=np.ones((3, 2)), W1=np.ones((1, 3)), depth=3)
    with pytest.raises(ValueError, match="depth 3"):
        cd.Network.load(depth)
    none = _write_npz(tmp_path / "none.npz", A=np.ones(2))
    with pytest.raises(ValueError, match="expected arrays W0"):
        cd.Network.load(none)


def test_interrupted_save_leaves_the_old_file(tmp_path, rng, monkeypatch):
    path = tmp_path / "net.npz"
    old = cd.Network((rng.normal(size=(3, 2)), rng.normal(size=(1, 3))))
    old.save(path)
    before = path.read_bytes()

    def broken_savez(fh, **arrays):
        fh.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    new = cd.Network((rng.normal(size=(5, 2)), rng.normal(size=(1, 5))))
    with pytest.raises(OSError, match="disk full"):
        new.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.npz"]  # no temp file left
