"""A finite network: plain weight matrices, its forward pass, loss and I/O.

``weights[l]`` has shape ``(n_{l+1}, n_l [+1])``: the extra last column is the bias, scaled by
``bias`` (docs/MATH.md §1). Hidden widths may be 0 (the zero network).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .activations import Homogeneous, NonHomogeneous, get_activation
from .formulations import loss_parameters, min_norm_weights
from .forward import check_weights, forward
from .records import FORMAT_VERSION, MAX_NPZ_BYTES, ProblemRecord, atomic_write, read_npz

__all__ = ["Network"]


@dataclass(frozen=True, eq=False)
class Network:
    """A feed-forward network with a positively homogeneous (or any) activation.

    Parameters
    ----------
    weights : tuple of ndarray
        ``weights[l]`` of shape ``(n_{l+1}, n_l)`` or ``(n_{l+1}, n_l + 1)`` with a bias.
    activation : activation object or name
    bias : float, default 0
        The paper's ``beta``: the bias column of each layer input holds this constant.
    problem_record : ProblemRecord, optional
        The problem the network was solved for (set by :func:`conic_dnn.solve` and by
        :meth:`load` of a file that has one); written by :meth:`save`.
    """

    weights: tuple
    activation: Homogeneous | NonHomogeneous = "relu"
    bias: float = 0.0
    problem_record: ProblemRecord | None = field(default=None, repr=False)

    def __post_init__(self):
        act = get_activation(self.activation)
        bias = float(self.bias)
        if not np.isfinite(bias) or bias < 0:
            raise ValueError(f"bias: expected a finite number >= 0, got {self.bias}")
        ws = self.weights
        if isinstance(ws, (list, tuple)) and len(ws) > 0:
            first = np.asarray(ws[0])
            d = first.shape[1] - (1 if bias > 0 else 0) if first.ndim == 2 else -1
        else:
            d = 0
        ws = check_weights(ws, d, None, None, bias)
        for W in ws:
            W.flags.writeable = False
        object.__setattr__(self, "weights", tuple(ws))
        object.__setattr__(self, "activation", act)
        object.__setattr__(self, "bias", bias)
        if self.problem_record is not None and not isinstance(self.problem_record,
                                                              ProblemRecord):
            raise TypeError(f"problem_record: expected a ProblemRecord or None, got "
                            f"{type(self.problem_record).__name__}")

    @property
    def depth(self) -> int:
        """Number of weight matrices."""
        return len(self.weights)

    @property
    def widths(self) -> tuple[int, ...]:
        """Hidden widths ``(n_1, ..., n_{L-1})``."""
        return tuple(W.shape[0] for W in self.weights[:-1])

    @property
    def input_dim(self) -> int:
        return self.weights[0].shape[1] - (1 if self.bias > 0 else 0)

    @property
    def output_dim(self) -> int:
        return self.weights[-1].shape[0]

    def forward(self, X: np.ndarray) -> list[np.ndarray]:
        """Pre-activations ``Z_1..Z_L`` on ``X`` (shape ``(N, d)``)."""
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != self.input_dim:
            raise ValueError(f"X: expected shape (N, {self.input_dim}), got {X.shape}")
        return forward(X, self.weights, self.activation, self.bias)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Network output ``Z_L``, shape ``(N, k)``."""
        return self.forward(X)[-1]

    def squared_norm(self) -> float:
        """``sum_l ||W_l||_F^2``."""
        return float(sum(np.sum(W**2) for W in self.weights))

    def loss(self, problem) -> float:
        """Regularised loss ``C(Z_L) + lam * sum ||W_l||^2`` on ``problem``'s data."""
        return loss_parameters(problem, list(self.weights))

    def min_norm(self, problem) -> Network:
        """Same activations on ``problem.X``, minimal-norm weights (never a higher loss)."""
        return Network(tuple(min_norm_weights(problem, self.forward(problem.X))),
                       self.activation, self.bias)

    def with_record(self, problem=None, method: str = "") -> Network:
        """The same network carrying the :class:`ProblemRecord` of ``problem`` (or none)."""
        rec = None if problem is None else ProblemRecord.from_problem(problem, method)
        return Network(self.weights, self.activation, self.bias, rec)

    # --- I/O -----------------------------------------------------------------------------
    def save(self, path, problem=None, *, method: str | None = None,
             overwrite: bool = True) -> Path:
        """Write the network to an ``.npz`` file, atomically.

        Format (``format_version`` 1): arrays ``W0 .. W{L-1}`` (the weights), ``activation_a``,
        ``activation_b``, ``activation_name``, ``bias``, ``depth``, ``format_version`` and, when
        the network has a problem record (or ``problem`` is given), ``problem_record``: a string
        holding the strict JSON of :class:`~conic_dnn.core.records.ProblemRecord` (lam, loss and
        its parameters, activation, bias, depth, sha256 and shapes of X and Y, method, package
        version). Read back with :meth:`load`; ``numpy.load(path)`` reads it too.

        Parameters
        ----------
        path : str or Path
            ``.npz`` is appended when the name has another suffix.
        problem : Problem, optional
            Record this problem (default: the network's own ``problem_record``).
        method : str, optional
            The method stored in the record (default: the record's).
        overwrite : bool, default True
            False: refuse (``FileExistsError``) when the file exists.

        Returns
        -------
        Path
            The file written.
        """
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(path.suffix + ".npz")
        act = self.activation
        if not act.is_homogeneous:
            raise ValueError("activation: only homogeneous activations can be saved, got "
                             f"{act.name!r}")
        rec = self.problem_record if problem is None else \
            ProblemRecord.from_problem(problem, method or "")
        if rec is not None and method is not None:
            rec = rec.with_method(method)
        if rec is not None:
            self._check_record(rec, str(path))
        arrays = {f"W{i}": W for i, W in enumerate(self.weights)}
        arrays.update(activation_a=act.a, activation_b=act.b, activation_name=act.name,
                      bias=self.bias, depth=self.depth, format_version=FORMAT_VERSION)
        if rec is not None:
            arrays["problem_record"] = np.array(rec.to_json())
        return atomic_write(path, lambda fh: np.savez(fh, **arrays), overwrite=overwrite)

    def _check_record(self, rec: ProblemRecord, where: str) -> None:
        act = self.activation
        mism = [f"{n} {mine} != {theirs}" for n, mine, theirs in (
            ("depth", self.depth, rec.depth), ("bias", self.bias, rec.bias),
            ("activation slopes", (act.a, act.b), (rec.activation_a, rec.activation_b)))
            if mine != theirs]
        if rec.X_shape[1:] != (self.input_dim,) or rec.Y_shape[1:] != (self.output_dim,):
            mism.append(f"shapes X {rec.X_shape}, Y {rec.Y_shape} vs input_dim "
                        f"{self.input_dim}, output_dim {self.output_dim}")
        if mism:
            raise ValueError(f"{where}: the problem record does not match the network: "
                             + "; ".join(mism))

    @classmethod
    def load(cls, path, *, max_bytes: int = MAX_NPZ_BYTES) -> Network:
        """Read a network written by :meth:`save` (or any npz with ``W0, W1, ...``).

        The archive is checked before it is read (sizes against ``max_bytes``, dtypes; see
        :func:`conic_dnn.core.records.read_npz`); the weights must be ``W0 .. W{L-1}`` with no
        index missing; a ``problem_record`` is read back into :attr:`problem_record` and must
        agree with the weights (depth, bias, activation, shapes).

        Raises
        ------
        FileNotFoundError
            No such file.
        ValueError
            Not a readable network file (the message says why).
        """
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"network file not found: {path}")
        f = read_npz(path, max_bytes)
        idx = sorted(int(k[1:]) for k in f if k[:1] == "W" and k[1:].isdigit())
        if not idx:
            raise ValueError(f"{path}: expected arrays W0, W1, ... in the npz file, got "
                             f"{', '.join(sorted(f)) or 'none'}")
        if idx != list(range(len(idx))):
            gaps = sorted(set(range(max(idx) + 1)) - set(idx))
            raise ValueError(f"{path}: expected weight arrays W0 .. W{max(idx)} without gaps, "
                             f"missing {', '.join(f'W{i}' for i in gaps)}")
        version = int(f["format_version"]) if "format_version" in f else 0
        if version > FORMAT_VERSION:
            raise ValueError(f"{path}: format version {version} is newer than this package "
                             f"reads ({FORMAT_VERSION}); upgrade conic_dnn")
        weights = []
        for i in idx:
            W = f[f"W{i}"]
            if W.dtype.kind not in "biuf":
                raise ValueError(f"{path}: W{i} has dtype {W.dtype}; expected real numbers")
            weights.append(W)
        if "depth" in f and int(f["depth"]) != len(weights):
            raise ValueError(f"{path}: the file says depth {int(f['depth'])} but holds "
                             f"{len(weights)} weight matrices")
        if "activation_a" in f:
            name = str(f["activation_name"]) if "activation_name" in f else "custom"
            act = Homogeneous(float(f["activation_a"]), float(f["activation_b"]), name)
        else:
            act = "relu"
        bias = float(f["bias"]) if "bias" in f else 0.0
        net = cls(tuple(weights), act, bias)
        if "problem_record" in f:
            try:
                rec = ProblemRecord.from_json(str(f["problem_record"]))
            except ValueError as exc:
                raise ValueError(f"{path}: {exc}") from None
            net._check_record(rec, str(path))
            net = cls(net.weights, net.activation, net.bias, rec)
        return net

    def __repr__(self) -> str:
        return (f"Network(widths={self.widths}, input_dim={self.input_dim}, "
                f"output_dim={self.output_dim}, activation={self.activation.name!r}, "
                f"bias={self.bias:g})")
