"""Sparsity: the paper's N^2/4 tight example and sparsity reports
(docs/MATH.md §4; the paper's tight example, Jacot et al. 2022).

``prune`` (:mod:`conic_dnn.neurons.pruning`)
    Caratheodory / LP pruning of any network, same covariances in every layer.
``tight_example``
    ReLU, depth 2, ``X = I_N``, ``Y_N = E^T E`` for the complete bipartite graph ``K_{N/2,N/2}``:
    a global minimum with exactly ``N^2/4`` neurons, whose loss is the closed-form lower bound
    ``lam N^2 - lam^2 N (N - 1)``.
``sparsity_report``
    Width, pruned widths (both methods), generator rank, ``N(N+1)`` and ``N^2/4`` per layer.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ..core.errors import SizeLimitError
from ..core.formulations import activations_from_weights
from ..core.network import Network
from ..core.problem import Problem
from ..neurons.decompose import generator_rank
from ..neurons.pruning import as_network, prune

__all__ = ["tight_example", "tight_example_bound", "bipartite_incidence", "SparsityReport",
           "LayerSparsity", "sparsity_report", "MAX_EXAMPLE_BYTES", "tight_example_bytes"]

#: Largest memory :func:`tight_example` allocates without ``force=True`` (1 GiB: N ~ 500; the
#: example is N^3 / 4 numbers per weight matrix, N = 2000 would take ~64 GB).
MAX_EXAMPLE_BYTES = 2**30


def tight_example_bytes(N: int) -> int:
    """Memory estimate of :func:`tight_example` (float64): ``E`` and ``B`` and the two weight
    matrices, ``N^3 / 4`` numbers each, plus ``X``, ``Y`` and their copies in the Problem."""
    return 8 * (4 * (N * N // 4) * N + 4 * N * N)


def _check_example_size(N: int, force: bool, what: str) -> None:
    need = tight_example_bytes(N)
    if need > MAX_EXAMPLE_BYTES and not force:
        raise SizeLimitError(
            f"{what}: N = {N} needs ~{need / 2**30:.1f} GiB (N^2/4 = {N * N // 4:,} neurons of "
            f"dimension N; limit {MAX_EXAMPLE_BYTES / 2**30:g} GiB); tight_example_bound(N, "
            f"lam) gives the closed-form loss without allocating anything, a smaller N the "
            f"network, or pass force=True")

def bipartite_incidence(N: int, force: bool = False) -> np.ndarray:
    """Edge-vertex incidence matrix ``E``, shape ``(N^2/4, N)``, of ``K_{N/2,N/2}`` (parts
    ``{0..N/2-1}`` and ``{N/2..N-1}``; the row of edge ``{i, j}`` has ones at ``i`` and ``j``).
    Raises :class:`~conic_dnn.SizeLimitError` before allocating beyond
    ``MAX_EXAMPLE_BYTES`` (unless ``force``)."""
    N = _check_even(N)
    _check_example_size(N, force, "bipartite_incidence")
    h = N // 2
    E = np.zeros((h * h, N))
    rows = np.arange(h * h)
    E[rows, rows // h] = 1.0
    E[rows, h + rows % h] = 1.0
    return E


def _check_even(N) -> int:
    if isinstance(N, bool) or not isinstance(N, (int, np.integer)) or N < 2 or N % 2:
        raise ValueError(f"N: expected an even integer >= 2, got {N!r}")
    return int(N)


def tight_example_bound(N: int, lam: float) -> float:
    """Closed-form lower bound ``lam N^2 - lam^2 N (N - 1)`` of the tight example's loss:
    ``min_Z (1/N)||Z - Y_N||^2 + 2 lam ||Z||_*`` (singular-value soft-thresholding at
    ``lam N``; every two-layer network on ``X = I`` costs at least ``2 lam ||Z||_*``)."""
    N = _check_even(N)
    return float(lam * N**2 - lam**2 * N * (N - 1))


def tight_example(N: int, lam: float = 1e-3, force: bool = False) -> tuple[Problem, Network]:
    """The paper's example whose global minimum needs ``N^2/4`` neurons.

    ReLU, depth 2, no bias, ``X = I_N``, ``Y = Y_N = E^T E`` (:func:`bipartite_incidence`).
    The optimal output is the soft-thresholded ``Z* = Y_N - lam N (I - v v^T / N)``
    (``v = (1,..,1,-1,..,-1)``), entrywise ``N/2 - lam (N-1)`` on the diagonal, ``lam``
    within a part and ``1 - lam`` across. It factors as ``Z* = B B^T`` with one nonnegative
    column per edge ``{i, j}``: ``b_ij = alpha (e_i + e_j) + gamma 1``, ``alpha^2 = 1 - 2 lam``,
    ``gamma = 2 (sqrt(1 - lam) - alpha) / N``; the network ``W_1 = B^T``, ``W_2 = B`` has
    loss ``lam N^2 - lam^2 N (N - 1)`` = :func:`tight_example_bound`, so it is a certified
    global minimum, with ``N^2/4`` hidden neurons.

    Parameters
    ----------
    N : int
        Even, >= 2.
    lam : float
        In ``(0, 1/2)``.
    force : bool, default False
        Allocate even above ``MAX_EXAMPLE_BYTES``.

    Returns
    -------
    problem : Problem
    network : Network
        Hidden width ``N^2/4``.

    Raises
    ------
    SizeLimitError
        Before any allocation, when :func:`tight_example_bytes` exceeds ``MAX_EXAMPLE_BYTES``
        (N > ~500); :func:`tight_example_bound` needs no memory.
    """
    N = _check_even(N)
    if isinstance(lam, bool) or not isinstance(lam, (int, float, np.floating)) \
            or not 0 < lam < 0.5:
        raise ValueError(f"lam: expected a number in (0, 1/2), got {lam!r}")
    _check_example_size(N, force, "tight_example")
    E = bipartite_incidence(N, force=True)
    problem = Problem(np.eye(N), E.T @ E, 2, float(lam), activation="relu")
    alpha = math.sqrt(1.0 - 2.0 * lam)
    gamma = 2.0 * (math.sqrt(1.0 - lam) - alpha) / N
    B = alpha * E.T + gamma  # (N, N^2/4): columns b_ij
    return problem, Network((B.T.copy(), B.copy()), "relu", 0.0)


# --- reports ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerSparsity:
    """Sparsity figures of one hidden layer.

    Attributes
    ----------
    layer : int
        1-based hidden layer index.
    width : int
        Neurons in the given network.
    active : int
        Neurons with a nonzero generator (``s(z) != 0`` or ``z != 0``).
    pruned_caratheodory, pruned_lp : int
        Width after :func:`prune` with each method.
    rank : int
        Rank of the generator family (a lower bound for both prunings' guarantee: Caratheodory
        keeps at most ``rank``).
    caratheodory_bound : int
        ``N(N+1)``.
    tight_bound : float
        ``N^2/4`` (the paper's tight example needs that many).
    """

    layer: int
    width: int
    active: int
    pruned_caratheodory: int
    pruned_lp: int
    rank: int
    caratheodory_bound: int
    tight_bound: float


@dataclass(frozen=True)
class SparsityReport:
    """Per-layer sparsity figures; ``str()`` gives a table.

    Attributes
    ----------
    layers : list of LayerSparsity
    N : int
    loss, loss_caratheodory, loss_lp : float
        Loss of the given network and of both pruned networks.
    pruned : dict
        The pruned networks, ``{"caratheodory": Network, "lp": Network}``.
    """

    layers: list
    N: int
    loss: float
    loss_caratheodory: float
    loss_lp: float
    pruned: dict = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {"N": self.N, "loss": self.loss, "loss_caratheodory": self.loss_caratheodory,
                "loss_lp": self.loss_lp, "layers": [asdict(x) for x in self.layers]}

    def __str__(self) -> str:
        head = (f"sparsity report (N = {self.N}; loss {self.loss:.9g}, pruned: caratheodory "
                f"{self.loss_caratheodory:.9g}, lp {self.loss_lp:.9g})")
        cols = ("layer", "width", "active", "caratheodory", "lp", "rank", "N(N+1)", "N^2/4")
        rows = [(str(x.layer), str(x.width), str(x.active), str(x.pruned_caratheodory),
                 str(x.pruned_lp), str(x.rank), str(x.caratheodory_bound), f"{x.tight_bound:g}")
                for x in self.layers]
        w = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c)
             for i, c in enumerate(cols)]
        line = " | ".join(c.rjust(w[i]) for i, c in enumerate(cols))
        out = [head, line, "-" * len(line)]
        out += [" | ".join(v.rjust(w[i]) for i, v in enumerate(r)) for r in rows]
        return "\n".join(out)


def sparsity_report(problem: Problem, network, rtol: float = 1e-10,
                    max_bytes: float | None = None) -> SparsityReport:
    """Width, pruned widths (both methods), generator rank and the bounds, per hidden layer.

    Parameters
    ----------
    problem : Problem
    network : Network, list of ndarray, path to ``.npz`` or torch.nn.Sequential
    rtol : float
        Rank tolerance (relative to the largest singular value of the generator family).
    max_bytes : float, optional
        Memory guard of the prunings and ranks (see :func:`conic_dnn.prune`).

    Returns
    -------
    SparsityReport
    """
    net = as_network(problem, network)
    car = prune(problem, net, "caratheodory", rtol, max_bytes=max_bytes)
    lp = prune(problem, net, "lp", rtol, max_bytes=max_bytes)
    Zs = activations_from_weights(problem, list(net.weights))
    N, act = problem.N, problem.activation
    layers = []
    for l in range(problem.depth - 1):
        Z = Zs[l]
        active = int(np.sum(np.abs(Z).max(axis=0) > 0)) if Z.shape[1] else 0
        layers.append(LayerSparsity(
            layer=l + 1, width=int(Z.shape[1]), active=active,
            pruned_caratheodory=car.widths[l], pruned_lp=lp.widths[l],
            rank=generator_rank(Z, act, rtol, max_bytes) if Z.shape[1] else 0,
            caratheodory_bound=N * (N + 1), tight_bound=N * N / 4))
    return SparsityReport(layers, N, net.loss(problem), car.loss(problem), lp.loss(problem),
                          {"caratheodory": car, "lp": lp})
