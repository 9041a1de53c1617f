"""core/records.py: problem records, strict JSON, atomic writes and checked npz reads."""

import hashlib
import zipfile

import numpy as np
import pytest

import conic_dnn as cd
from conic_dnn.core import records
from conic_dnn.core.records import ProblemRecord

from .conftest import strict_loads


@pytest.fixture
def problem(rng):
    return cd.Problem(rng.normal(size=(5, 3)), rng.normal(size=5), 3, 0.07,
                      activation=cd.leaky_relu(0.2), loss=cd.Huber(0.5), bias=0.3)


def test_record_holds_the_problem(problem):
    rec = ProblemRecord.from_problem(problem, "alternating")
    assert (rec.lam, rec.loss, rec.loss_params) == (0.07, "huber", {"delta": 0.5})
    assert (rec.activation_a, rec.activation_b, rec.bias, rec.depth) == (1.0, 0.2, 0.3, 3)
    assert rec.X_shape == (5, 3) and rec.Y_shape == (5, 1)
    # independent oracle for the hash convention: float64 little-endian C-order bytes
    assert rec.X_sha256 == hashlib.sha256(np.asarray(problem.X, "<f8").tobytes()).hexdigest()
    assert rec.version == cd.__version__ and rec.method == "alternating"
    back = ProblemRecord.from_json(rec.to_json())
    assert back == rec
    assert "array" not in repr(rec) and len(repr(rec).splitlines()) == 1


def test_data_mismatches_names_the_array(problem):
    rec = ProblemRecord.from_problem(problem)
    assert rec.data_mismatches(problem.X, problem.Y) == []
    assert rec.data_mismatches(problem.X, problem.Y.ravel()) == []  # (N,) is stored as (N, 1)
    X2 = problem.X.copy()
    X2[0, 0] += 1e-12  # one ulp-scale change is a different data set
    out = rec.data_mismatches(X2, problem.Y)
    assert out == ["X differs (sha256) from the data"]
    assert "shape" in rec.data_mismatches(problem.X[:4], problem.Y[:4])[0]


@pytest.mark.parametrize("change, message", [
    ({"lam": None}, "missing field"), ({"depth": "three"}, "malformed"),
    ({"format_version": 99}, "newer"),
])
def test_malformed_records_are_refused(problem, change, message):
    d = ProblemRecord.from_problem(problem).to_dict()
    d.update(change)
    if change == {"lam": None}:
        del d["lam"]
    with pytest.raises(ValueError, match=message):
        ProblemRecord.from_dict(d)
    with pytest.raises(ValueError, match="JSON"):
        ProblemRecord.from_json("{not json")
    with pytest.raises(ValueError, match="strict JSON"):
        ProblemRecord.from_json('{"lam": NaN}')


def test_jsonable_is_strict():
    obj = {"a": float("inf"), "b": -np.inf, "c": np.nan, "d": np.float32(2.5), "e": np.int64(3),
           "f": (1, np.bool_(True)), "g": np.arange(3), "h": [None, "x"]}
    d = strict_loads(records.dumps_strict(obj))
    assert d == {"a": None, "b": None, "c": None, "d": 2.5, "e": 3, "f": [1, True],
                 "g": [0, 1, 2], "h": [None, "x"]}


@pytest.mark.parametrize("arr", [
    np.array([1, 2], dtype="timedelta64[s]"), np.array(["2020-01-01"], dtype="datetime64[D]"),
    np.array([1 + 2j]), np.array([object()], dtype=object), np.array(["a"]),
    np.ma.array([1.0, 2.0], mask=[0, 1]),
], ids=["timedelta", "datetime", "complex", "object", "str", "masked"])
def test_exotic_dtypes_are_refused(arr):
    with pytest.raises(TypeError, match="X: expected a (real numeric|plain numeric) array"):
        records.check_data_dtype(arr, "X")


def test_plain_dtypes_pass():
    for arr in (np.ones(2, bool), np.ones(2, np.int8), np.ones(2, np.uint16), np.ones(2)):
        records.check_data_dtype(arr, "X")


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")

    def boom(fh):
        fh.write("half of the new")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        records.atomic_write(target, boom, mode="w")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]
    with pytest.raises(FileExistsError):
        records.atomic_write(target, lambda fh: fh.write("new"), mode="w", overwrite=False)
    records.atomic_write(target, lambda fh: fh.write("new"), mode="w")
    assert target.read_text() == "new"


def test_read_npz_size_guard_from_zip_directory(tmp_path):
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, X=np.zeros((1000, 1000)))  # 8 MB that compresses to ~8 kB
    assert path.stat().st_size < 100_000
    with pytest.raises(ValueError, match="expand to 8,000,"):
        records.read_npz(path, max_bytes=1_000_000)
    assert records.read_npz(path, max_bytes=10_000_000)["X"].shape == (1000, 1000)


def test_read_npz_size_guard_from_array_header(tmp_path):
    """A header declaring a huge shape is refused before numpy allocates it."""
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**9,)}
    path = tmp_path / "lie.npz"
    with zipfile.ZipFile(path, "w") as zf, zf.open("X.npy", "w") as fp:
        np.lib.format.write_array_header_1_0(fp, header)
        fp.write(b"\0" * 64)
    with pytest.raises(ValueError, match="more than the limit"):
        records.read_npz(path, max_bytes=1_000_000)


def test_read_npz_refuses_non_archives_and_objects(tmp_path):
    path = tmp_path / "x.npz"
    path.write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="not an .npz archive"):
        records.read_npz(path)
    obj = tmp_path / "obj.npz"
    np.savez(obj, X=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="dtype object"):
        records.read_npz(obj)
    td = tmp_path / "td.npz"
    np.savez(td, X=np.array([1, 2], dtype="timedelta64[s]"))
    with pytest.raises(ValueError, match="timedelta64"):
        records.read_npz(td)
