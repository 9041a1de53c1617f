"""The result of a solve: a frozen dataclass with named fields, a readable summary, strict
JSON (:meth:`Result.to_dict`, :meth:`Result.to_json`) and files (:meth:`Result.save`,
:func:`load_result`).

Saved format (``format_version`` 1): a directory (or any path) with ``result.json``, strict
JSON (``null`` for unbounded or missing values) holding the fields of :meth:`Result.to_dict`
plus ``format``, ``format_version``, ``problem`` (the :class:`ProblemRecord`: lam, loss and
its parameters, activation, bias, depth, sha256 and shapes of X and Y, method, package version),
``network_file`` (relative to the JSON file) and ``network_sha256`` (of that file's bytes);
the network is the ``.npz`` of :meth:`conic_dnn.Network.save`, which carries the same record.
The network is written before the result that points to it, each atomically, so a failed save
never leaves a new result next to an old network (and :func:`load_result` checks the hash).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .network import Network
from .records import (
    FORMAT_VERSION,
    ProblemRecord,
    atomic_write,
    dumps_strict,
    jsonable,
    loads_strict,
)

__all__ = ["Result", "load_result", "RESULT_FORMAT", "certification_slack"]

#: The ``format`` tag of a saved ``result.json``.
RESULT_FORMAT = "conic_dnn.result"



def certification_slack(problem, tol: float, objective: float) -> float:
    """How far a lower bound may sit below ``objective`` for a certificate: ``tol`` relative,
    plus 1e-14 of the zero predictor's cost ``C(0)`` (the problem's own scale; an absolute
    1e-14 would certify anything on data scaled to 1e-8). One rule for every depth-2 method."""
    scale = problem.loss.value(np.zeros_like(problem.Y), problem.Y)
    return tol * abs(objective) + 1e-14 * max(scale, 1e-300)

@dataclass(frozen=True, eq=False)
class Result:
    """Outcome of :func:`conic_dnn.solve`.

    Attributes
    ----------
    objective : float
        Regularised loss of ``network`` (its own forward pass): an upper bound, achieved.
    lower_bound : float
        Depth 2: the value of a dual point verified in floating point (never a solver's
        value; ``info["bound_source"]`` says which point and how ``rho`` was certified),
        ``-inf`` when none could be verified; deep networks: ``-inf``. Column generation:
        its Fenchel dual bound.
    gap : float
        ``objective - lower_bound`` (``inf`` without a bound).
    certified : bool
        True when ``gap <= tol * |objective| + 1e-14 * C(0)`` (depth 2; ``C(0)`` the cost of
        the zero predictor): ``network`` is a global minimiser to that accuracy.
    network : Network
        The explicit finite network (hidden widths <= N(N+1)).
    covariances : list of (ndarray, ndarray)
        ``(K_l, G_l)`` of ``network`` on the training data (``G_l`` with the bias shift).
    history : list of float
        Objective after every step (one entry for a global solve).
    status : str
        Solver status of the (last) cone program: ``"optimal"`` or ``"optimal_inaccurate"``.
    solver : str
        Solver that produced the solution (after any fallback).
    solve_time : float
        Wall-clock seconds of the whole solve.
    success : bool
    message : str
    method : str
        ``"pattern"``, ``"lifted"`` (cone representation) or ``"alternating"``.
    exact : bool
        True when the cone representation is exact, so ``lower_bound`` is the true optimum.
    info : dict
        Details: compile and solver times, attempts (fallbacks), decomposition residuals,
        widths before pruning, polishing.
    problem_record : ProblemRecord or None
        The problem solved (set by :func:`conic_dnn.solve`; also on ``network``).
    warnings : tuple of str
        Warnings raised while the result was produced, as text (when they were collected).

    Notes
    -----
    SciPy-style aliases: ``fun`` (= ``objective``), ``x`` (= ``network``), ``nit`` (sweeps,
    rounds or solver iterations, when known), ``success``, ``message``. ``rel_gap`` is the gap
    relative to ``|objective|``.
    """

    objective: float
    lower_bound: float
    gap: float
    certified: bool
    network: Network
    covariances: list
    history: list
    status: str
    solver: str
    solve_time: float
    success: bool = True
    message: str = ""
    method: str = ""
    exact: bool = False
    info: dict = field(default_factory=dict)
    problem_record: ProblemRecord | None = None
    warnings: tuple = ()

    @property
    def widths(self) -> tuple:
        return self.network.widths

    @property
    def rel_gap(self) -> float:
        """``gap / |objective|`` (``inf`` without a bound; 0 when both are 0)."""
        return _relative(self.gap, self.objective)

    # --- SciPy-style aliases -------------------------------------------------------------
    @property
    def fun(self) -> float:
        """Alias of ``objective``."""
        return self.objective

    @property
    def x(self) -> Network:
        """Alias of ``network``."""
        return self.network

    @property
    def nit(self) -> int | None:
        """Sweeps (depth >= 3), rounds (column generation) or cone-solver iterations, if
        known."""
        for key in ("sweeps", "rounds", "iterations"):
            v = self.info.get(key)
            if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
                return int(v)
        return None

    def with_problem(self, problem) -> Result:
        """A copy carrying ``problem``'s :class:`ProblemRecord` (on the network too)."""
        rec = ProblemRecord.from_problem(problem, self.method)
        net = Network(self.network.weights, self.network.activation, self.network.bias, rec)
        return replace(self, problem_record=rec, network=net)

    def with_warnings(self, messages) -> Result:
        """A copy with ``warnings`` set to ``messages`` (strings)."""
        return replace(self, warnings=tuple(str(m) for m in messages))

    # --- JSON and files ------------------------------------------------------------------
    def to_dict(self, covariances: bool = False) -> dict:
        """The result as strict-JSON-ready data (``None`` for unbounded values).

        Parameters
        ----------
        covariances : bool, default False
            Include the ``(K_l, G_l)`` matrices as nested lists (large).
        """
        info = {k: v for k, v in self.info.items() if _plain(v)}
        d = {
            "objective": self.objective, "lower_bound": self.lower_bound, "gap": self.gap,
            "rel_gap": self.rel_gap, "certified": bool(self.certified),
            "exact": bool(self.exact), "widths": list(self.widths), "status": self.status,
            "solver": self.solver, "method": self.method, "success": bool(self.success),
            "message": self.message, "nit": self.nit, "solve_time": self.solve_time,
            "history": list(self.history), "warnings": list(self.warnings),
            "timings": {"compile_time": self.info.get("compile_time"),
                        "solver_time": self.info.get("solver_time")},
            "problem": None if self.problem_record is None else self.problem_record.to_dict(),
            "info": info,
        }
        if covariances:
            d["covariances"] = [[np.asarray(K).tolist(), np.asarray(G).tolist()]
                                for K, G in self.covariances]
        return jsonable(d)

    def to_json(self, covariances: bool = False, indent: int | None = 2) -> str:
        """Strict JSON of :meth:`to_dict` (no NaN / Infinity: unbounded values are null)."""
        return dumps_strict(self.to_dict(covariances), indent=indent)

    def save(self, path, problem=None, *, overwrite: bool = True,
             network_name: str = "network.npz") -> Path:
        """Write ``network_name`` and ``result.json`` (see the module docstring).

        Parameters
        ----------
        path : str or Path
            A directory (the files go inside it) or a ``.json`` file (the network goes next
            to it); missing directories are created.
        problem : Problem, optional
            Record this problem (default: the result's ``problem_record``).
        overwrite : bool, default True
            False: refuse (``FileExistsError``) if either file exists.

        Returns
        -------
        Path
            The ``result.json`` written.
        """
        path = Path(path)
        json_path = path if path.suffix == ".json" else path / "result.json"
        json_path.parent.mkdir(parents=True, exist_ok=True)
        net_path = json_path.parent / network_name
        if not overwrite:
            for p in (net_path, json_path):
                if p.exists():
                    raise FileExistsError(f"{p}: exists (refusing to overwrite it)")
        res = self if problem is None else self.with_problem(problem)
        net_path = res.network.save(net_path, overwrite=overwrite)
        d = res.to_dict()
        d.update({"format": RESULT_FORMAT, "format_version": FORMAT_VERSION,
                  "network_file": net_path.name, "network_sha256": _file_sha256(net_path)})
        text = dumps_strict(d)
        return atomic_write(json_path, lambda fh: fh.write(text), mode="w",
                            overwrite=overwrite)

    def __repr__(self) -> str:
        lb = "None" if not np.isfinite(self.lower_bound) else f"{self.lower_bound:.10g}"
        return (f"Result(objective={self.objective:.10g}, lower_bound={lb}, "
                f"rel_gap={self.rel_gap:.2g}, certified={self.certified}, "
                f"widths={self.widths}, method={self.method!r}, status={self.status!r})")

    def __str__(self) -> str:
        lb = "none" if not np.isfinite(self.lower_bound) else f"{self.lower_bound:.10g}"
        gap = ("n/a" if not np.isfinite(self.gap) else
               f"{self.rel_gap:.3g} relative ({self.gap:.3g} absolute)")
        kind = ("certified global optimum" if self.certified else
                ("relaxation bound, not certified" if np.isfinite(self.lower_bound)
                 else "local solution (no global bound)"))
        lines = [
            f"conic_dnn result ({self.method}, {kind})",
            f"  objective   : {self.objective:.10g}   (loss of the returned network)",
            f"  lower bound : {lb}" + ("   (dual bound)" if self.method == "column_generation"
                                       and np.isfinite(self.lower_bound) else
                                       "   (exact cone program)" if self.exact else
                                       "   (relaxation value; tight here)" if self.certified
                                       else "   (relaxation)" if np.isfinite(self.lower_bound)
                                       else ""),
            f"  gap         : {gap}",
            f"  widths      : {self.widths}",
            f"  status      : {self.status} ({self.solver}), {self.solve_time:.2f} s",
        ]
        if self.info.get("attempts") and len(self.info["attempts"]) > 1 \
                and self.method.split("/")[0] != "alternating":
            lines.append("  fallbacks   : " + ", ".join(f"{n}: {s}" for n, s in
                                                        self.info["attempts"]))
        if self.message:
            lines.append(f"  message     : {self.message}")
        return "\n".join(lines)


def _relative(gap: float, objective: float) -> float:
    if not math.isfinite(gap):
        return math.inf
    if objective == 0:
        return 0.0 if gap <= 0 else math.inf
    return float(gap) / abs(float(objective))


def _plain(v) -> bool:
    """True for values that belong in JSON: scalars, strings, short lists of them and small
    string-keyed dicts of such values."""
    if v is None or isinstance(v, (bool, str, int, float, np.integer, np.floating)):
        return True
    if isinstance(v, (list, tuple)):
        return len(v) <= 10_000 and all(_plain(x) for x in v)
    if isinstance(v, dict):
        return len(v) <= 100 and all(isinstance(k, str) and _plain(x) for k, x in v.items())
    return False


def _file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _number(v, default: float) -> float:
    return default if v is None else float(v)


def load_result(path) -> Result:
    """Read a result written by :meth:`Result.save` (or ``conic-dnn solve``).

    Parameters
    ----------
    path : str or Path
        The ``result.json`` or the directory holding it.

    Returns
    -------
    Result
        With ``network`` read from the file the JSON points to (its hash checked),
        ``problem_record`` and the saved ``info``; ``covariances`` is empty (not saved).

    Raises
    ------
    FileNotFoundError
        No such file (or the network file is missing).
    ValueError
        Not a conic_dnn result, a newer format, or a network file that changed since.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "result.json"
    if not path.exists():
        raise FileNotFoundError(f"result file not found: {path}")
    try:
        d = loads_strict(path.read_text())
    except ValueError as exc:
        raise ValueError(f"{path}: not valid strict JSON ({exc})") from None
    if not isinstance(d, dict) or d.get("format") != RESULT_FORMAT:
        raise ValueError(f"{path}: not a conic_dnn result (expected format {RESULT_FORMAT!r})")
    if int(d.get("format_version", 0)) > FORMAT_VERSION:
        raise ValueError(f"{path}: format version {d['format_version']} is newer than this "
                         f"package reads ({FORMAT_VERSION}); upgrade conic_dnn")
    net_path = path.parent / str(d.get("network_file", "network.npz"))
    if not net_path.exists():
        raise FileNotFoundError(f"{path}: its network file {net_path} is missing")
    if d.get("network_sha256") and _file_sha256(net_path) != d["network_sha256"]:
        raise ValueError(f"{path}: the network file {net_path} changed since the result was "
                         f"written (sha256 mismatch)")
    net = Network.load(net_path)
    rec = None if d.get("problem") is None else ProblemRecord.from_dict(d["problem"])
    if rec is not None and net.problem_record is None:
        net = Network(net.weights, net.activation, net.bias, rec)
    return Result(
        objective=_number(d.get("objective"), math.nan),
        lower_bound=_number(d.get("lower_bound"), -math.inf),
        gap=_number(d.get("gap"), math.inf), certified=bool(d.get("certified")), network=net,
        covariances=[], history=[_number(v, math.nan) for v in d.get("history", [])],
        status=str(d.get("status", "")), solver=str(d.get("solver", "")),
        solve_time=_number(d.get("solve_time"), math.nan),
        success=bool(d.get("success", True)), message=str(d.get("message", "")),
        method=str(d.get("method", "")), exact=bool(d.get("exact", False)),
        info=dict(d.get("info") or {}), problem_record=rec,
        warnings=tuple(str(w) for w in d.get("warnings", [])))
