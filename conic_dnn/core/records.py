"""What a saved network or result carries about the problem it solves, and safe file I/O.

A :class:`ProblemRecord` names the problem a network was solved for: ``lam``, the loss (name and
parameters, e.g. Huber's ``delta``), the activation (name and slopes ``a, b``), ``bias``,
``depth``, the SHA-256 and shape of ``X`` and of ``Y``, the method and the package version. It
is stored as strict JSON (``null`` for a missing value, never NaN or Infinity) inside the
network's ``.npz`` (:meth:`conic_dnn.Network.save`) and inside ``result.json``
(:meth:`conic_dnn.Result.save`).

Hash convention: ``sha256`` of the array as :class:`~conic_dnn.Problem` stores it (float64,
C order, little-endian bytes; ``Y`` as ``(N, k)``), so the same data read from ``.npz`` or
``.csv`` hashes the same.

File safety: :func:`atomic_write` writes a temporary file in the target's directory and moves
it into place with ``os.replace`` (a reader never sees a half-written file; a failed write
leaves the old file untouched). :func:`read_npz` checks an archive before reading it: the
uncompressed sizes in the zip directory and the shapes in each array header against a limit,
and the dtypes (no objects, structured, complex, datetime or timedelta arrays).

May import: nothing else in conic_dnn (part of core).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

__all__ = ["ProblemRecord", "PACKAGE_VERSION", "FORMAT_VERSION", "MAX_NPZ_BYTES",
           "array_sha256", "jsonable", "dumps_strict", "atomic_write", "read_npz",
           "check_data_dtype"]

#: The package version written into every record (``conic_dnn.__version__``).
PACKAGE_VERSION = "0.1.0"
#: Version of the saved formats (network ``.npz`` and ``result.json``).
FORMAT_VERSION = 1
#: Largest total uncompressed size of an ``.npz`` that is read (1 GiB).
MAX_NPZ_BYTES = 1 << 30

_NUMERIC_KINDS = "biuf"  # bool, signed / unsigned integer, real float


def array_sha256(a) -> str:
    """SHA-256 (hex) of ``a`` as float64, C order, little-endian."""
    arr = np.ascontiguousarray(np.asarray(a, dtype="<f8"))
    return hashlib.sha256(arr.tobytes()).hexdigest()


def check_data_dtype(a, name: str) -> None:
    """Raise ``TypeError`` unless ``a`` is a plain real numeric array (bool, int, float):
    object, string, structured, complex, datetime, timedelta and masked arrays are refused."""
    if isinstance(a, np.ma.MaskedArray):
        raise TypeError(f"{name}: expected a plain numeric array, got a masked array (fill or "
                        f"drop the masked entries first)")
    dt = np.asarray(a).dtype
    if dt.kind not in _NUMERIC_KINDS:
        raise TypeError(f"{name}: expected a real numeric array (bool, integer or float), got "
                        f"dtype {dt}")


# --- strict JSON ---------------------------------------------------------------------------
def jsonable(obj):
    """``obj`` as plain JSON types: NumPy scalars and arrays to numbers and lists, tuples to
    lists, paths and unknown objects to strings, non-finite floats to ``None``."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if hasattr(obj, "to_dict"):
        return jsonable(obj.to_dict())
    return str(obj)


def dumps_strict(obj, indent: int | None = 2) -> str:
    """Strict JSON text of ``obj`` (through :func:`jsonable`; NaN / Infinity impossible)."""
    return json.dumps(jsonable(obj), indent=indent, allow_nan=False)


def _reject_constant(name):
    raise ValueError(f"invalid JSON constant {name} (strict JSON has no NaN / Infinity)")


def loads_strict(text: str):
    """Parse strict JSON (NaN / Infinity refused)."""
    return json.loads(text, parse_constant=_reject_constant)


# --- the record ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ProblemRecord:
    """The problem a saved network or result belongs to.

    Attributes
    ----------
    lam : float
    loss : str
        Loss name (``"mse"``, ``"huber"``, ...).
    loss_params : dict
        The loss's parameters (e.g. ``{"delta": 1.0}`` for Huber; empty for the MSE).
    activation : str
        Activation name.
    activation_a, activation_b : float or None
        Slopes of a positively homogeneous activation (``None`` otherwise).
    bias : float
    depth : int
    X_sha256, Y_sha256 : str
        Hashes of the data (see the module docstring for the convention).
    X_shape, Y_shape : tuple of int
    method : str
        How the network was obtained (``"pattern"``, ``"lifted"``, ``"alternating/..."``...).
    version : str
        Package version that wrote the record.
    format_version : int
    """

    lam: float
    loss: str
    loss_params: dict
    activation: str
    activation_a: float | None
    activation_b: float | None
    bias: float
    depth: int
    X_sha256: str
    X_shape: tuple
    Y_sha256: str
    Y_shape: tuple
    method: str = ""
    version: str = PACKAGE_VERSION
    format_version: int = FORMAT_VERSION

    @classmethod
    def from_problem(cls, problem, method: str = "") -> ProblemRecord:
        """The record of a :class:`~conic_dnn.Problem`."""
        act, loss = problem.activation, problem.loss
        homog = bool(getattr(act, "is_homogeneous", False))
        params = {f.name: jsonable(getattr(loss, f.name)) for f in fields(loss)}
        return cls(lam=float(problem.lam), loss=loss.name, loss_params=params,
                   activation=act.name, activation_a=float(act.a) if homog else None,
                   activation_b=float(act.b) if homog else None, bias=float(problem.bias),
                   depth=int(problem.depth), X_sha256=array_sha256(problem.X),
                   X_shape=tuple(problem.X.shape), Y_sha256=array_sha256(problem.Y),
                   Y_shape=tuple(problem.Y.shape), method=str(method or ""))

    def with_method(self, method: str) -> ProblemRecord:
        from dataclasses import replace

        return replace(self, method=str(method))

    def to_dict(self) -> dict:
        return jsonable({f.name: getattr(self, f.name) for f in fields(self)})

    def to_json(self) -> str:
        return dumps_strict(self.to_dict(), indent=None)

    @classmethod
    def from_dict(cls, d) -> ProblemRecord:
        """Read a record back (as written by :meth:`to_dict`); ``ValueError`` if malformed."""
        if not isinstance(d, dict):
            raise ValueError(f"problem record: expected a JSON object, got {type(d).__name__}")
        names = [f.name for f in fields(cls)]
        required = names[:12]
        missing = [n for n in required if n not in d]
        if missing:
            raise ValueError(f"problem record: missing field(s) {', '.join(missing)}")
        try:
            kw = {n: d[n] for n in names if n in d}
            kw["lam"], kw["bias"] = float(kw["lam"]), float(kw["bias"])
            kw["depth"] = int(kw["depth"])
            for s in ("activation_a", "activation_b"):
                kw[s] = None if kw[s] is None else float(kw[s])
            for s in ("X_shape", "Y_shape"):
                kw[s] = tuple(int(v) for v in kw[s])
            kw["loss_params"] = dict(kw["loss_params"])
            if "format_version" in kw:
                kw["format_version"] = int(kw["format_version"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"problem record: malformed field ({exc})") from None
        if kw.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
            raise ValueError(f"problem record: format version {kw['format_version']} is newer "
                             f"than this package reads ({FORMAT_VERSION}); upgrade conic_dnn")
        return cls(**kw)

    @classmethod
    def from_json(cls, text: str) -> ProblemRecord:
        try:
            return cls.from_dict(loads_strict(text))
        except json.JSONDecodeError as exc:
            raise ValueError(f"problem record: not valid JSON ({exc})") from None

    def data_mismatches(self, X, Y) -> list[str]:
        """Which of ``X``, ``Y`` (as a Problem stores them) differ from the recorded data: one
        phrase each (``"X differs (sha256) from the data"``), empty when both match."""
        out = []
        for name, arr, shape, digest in (("X", X, self.X_shape, self.X_sha256),
                                         ("Y", Y, self.Y_shape, self.Y_sha256)):
            arr = np.asarray(arr, dtype=float)
            if arr.ndim == 1 and name == "Y":
                arr = arr[:, None]
            if tuple(arr.shape) != tuple(shape):
                out.append(f"{name} has shape {tuple(arr.shape)}, not the shape {tuple(shape)} "
                           f"of the data")
            elif array_sha256(arr) != digest:
                out.append(f"{name} differs (sha256) from the data")
        return out

    def __repr__(self) -> str:
        return (f"ProblemRecord(lam={self.lam:g}, loss={self.loss!r}, "
                f"activation={self.activation!r}, bias={self.bias:g}, depth={self.depth}, "
                f"X_shape={self.X_shape}, method={self.method!r}, version={self.version!r})")


# --- files ---------------------------------------------------------------------------------
def atomic_write(path, write, *, mode: str = "wb", overwrite: bool = True) -> Path:
    """Write ``path`` atomically: ``write(fileobj)`` fills a temporary file in the same
    directory, which then replaces ``path`` (``os.replace``). On any error the temporary file
    is removed and ``path`` is left as it was.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path}: exists (refusing to overwrite it)")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def _npy_header(fp):
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fp)
    if version in ((2, 0), (3, 0)):
        return np.lib.format.read_array_header_2_0(fp)
    raise ValueError(f"unsupported .npy format version {version}")


def read_npz(path, max_bytes: int = MAX_NPZ_BYTES) -> dict:
    """Read every array of an ``.npz`` after checking it can be read safely.

    Checks, before anything is decompressed beyond the array headers: the total uncompressed
    size in the zip directory and the size each header declares (``<= max_bytes``), and each
    dtype (numbers, booleans and unicode strings only; no pickles).

    Raises
    ------
    ValueError
        Not an ``.npz`` archive, too large, or an array of an unsupported dtype.
    """
    path = Path(path)
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ValueError(f"{path}: not an .npz archive (expected a zip of .npy arrays)") \
            from None
    with zf:
        infos = zf.infolist()
        stated = sum(i.file_size for i in infos)
        if stated > max_bytes:
            raise ValueError(f"{path}: the archive would expand to {stated:,} bytes, more than "
                             f"the limit of {max_bytes:,} bytes")
        declared = 0
        for info in infos:
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            try:
                with zf.open(info) as fp:
                    shape, _, dtype = _npy_header(fp)
            except ValueError as exc:
                raise ValueError(f"{path}: entry {name!r} is not a readable .npy array "
                                 f"({exc})") from None
            if dtype.kind not in _NUMERIC_KINDS + "U":
                raise ValueError(f"{path}: array {name!r} has dtype {dtype}; expected numbers "
                                 f"(bool, integer, float) or strings")
            declared += int(np.prod(shape, dtype=object)) * dtype.itemsize
            if declared > max_bytes:
                raise ValueError(f"{path}: the arrays would take more than the limit of "
                                 f"{max_bytes:,} bytes (array {name!r} has shape {shape})")
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}
