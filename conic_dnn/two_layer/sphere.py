"""Exact pricing for ``k > 1`` outputs: branch and bound over the sphere of output directions.

Swapping the two maxima (``||x|| = max_{||w|| = 1} w^T x``),

    rho(Lam) = max_{||u|| = 1} ||Lam^T s(H0 u)|| = max_{||w|| = 1, w in R^k} g(w),
    g(w) = rho1(Lam w) = max_{||e|| = 1} |(Lam w)^T s(F e)|,

the one-output pricing value of :mod:`conic_dnn.two_layer.cells` at ``lam = Lam w``. On a cell
``P`` of the arrangement ``g_P(w) = ||Proj_{K_P}(+-B_P w)||`` with ``B_P = F^T D_P Lam``: a
support function composed with a linear map, so each ``g_P`` and ``g = max_P g_P`` are convex,
positively homogeneous and even (``g(-w) = g(w)``): one hemisphere of ``w`` suffices.

Bound on a spherical simplex
    Let ``v_1..v_k`` be unit vectors and ``W`` the unit vectors of their cone. Every ``w`` in
    ``W`` is ``x / ||x||`` with ``x = sum a_i v_i``, ``a`` in the unit simplex, and
    ``||x|| >= h = dist(0, conv(v_1..v_k))``, so by sublinearity

        g_P(w) = g_P(x) / ||x|| <= sum_i a_i g_P(v_i) / h <= max_i g_P(v_i) / h.

    ``h`` is bounded below rigorously by ``min_i n^T v_i / ||n||`` for any ``n`` (here the
    min-norm point of the simplex, found by enumerating its faces): ``n^T x >= min_i n^T v_i``
    on the hull. ``1/h - 1 ~ theta^2 / 8`` for a simplex of angular diameter ``theta``, so the
    bound is tight to second order and refinement near the maximisers is cheap.
Branch and bound
    The hemisphere ``w_k >= 0`` is covered by the ``2^(k-1)`` orthant simplices
    ``(+-e_1, .., +-e_(k-1), e_k)``; a node is split at the normalised midpoint of its longest
    edge. Every vertex gets per-cell rigorous upper bounds of ``g_P(v)`` (half-space and dual
    bounds of :mod:`.cells`, exact NNLS for the top cells); a cell whose node bound
    ``max_i g_P(v_i) / h`` is at most the threshold ``tau = max(best, target) (1 + rtol)`` is
    dropped for the node's descendants (it cannot exceed ``tau`` there), and nodes are
    processed best-first until every node bound is at most ``tau``. ``best`` is the TRUE
    value ``||Lam^T s(F e)||`` of a column ``e`` found (each exact cell projection, polished by
    alternating maximisation ``u -> w = Lam^T s(H0 u) / ||.|| -> u``), so it is attained;
    ``target`` (the master's ``2 lam``) lets the search ignore directions that cannot matter
    for the dual bound. ``rho_upper`` = the largest bound of anything dropped or left open
    (and ``best``): always valid; when the search closes, ``rho_upper <= max(best, target)
    (1 + rtol)`` (exact to ``rtol`` above the target).
Work cap
    ``max_work`` counts the search's work deterministically in units of one exact cell
    projection (an NNLS): each projection is one unit, each cell's half-space bound and each
    cell-iteration of the batched dual bounds ``1 /`` :data:`CELL_ITERS_PER_UNIT` (measured:
    an NNLS costs about as much as 100-160 cell-iterations at N = 15..30). When the work
    reaches the cap, no more exact projections are made (the vertices keep their dual bounds,
    valid) and the search stops: ``rho_upper`` is then the largest bound of the open nodes and
    of those dropped (and ``best``), still a rigorous upper bound, looser; ``capped`` says so.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

import numpy as np

from . import cells as _cells

__all__ = ["SphereResult", "price_sphere", "min_norm_lower"]

#: Relative margin on every quotient by ``h`` (its rounding error is ~1e-16 per dot product).
H_MARGIN = 1e-13
#: Most cells above the threshold at a node for which the linear bound is tried (each needs
#: its exact projection at every vertex); a node with more is split.
MAX_HOT = 256
#: Cell-iterations of the batched dual bounds (or half-space bounds) per work unit (one NNLS).
CELL_ITERS_PER_UNIT = 128


@dataclass
class SphereResult:
    """Outcome of :func:`price_sphere`: ``rho_upper`` (a rigorous upper bound on ``rho``),
    ``candidates`` ``[(value, u)]`` (true values, unit ``u``, best first, one per cell),
    ``closed`` (every node bound reached the threshold ``max(best, target) (1 + rtol)``, so
    ``rho_upper`` is at most it), ``capped`` (stopped by ``max_work`` or ``max_nodes``: the
    bound is valid but looser), ``work`` (units of one exact cell projection), counters."""

    rho_upper: float
    candidates: list = field(default_factory=list)
    closed: bool = False
    threshold: float = 0.0
    rtol: float = 0.0
    n_nodes: int = 0
    n_vertices: int = 0
    n_nnls: int = 0
    capped: bool = False
    work: float = 0.0


def min_norm_lower(Vs: np.ndarray) -> float:
    """A rigorous lower bound on ``dist(0, conv(columns of Vs))`` (``Vs`` k x k, unit columns):
    ``min_i n^T v_i / ||n||`` with ``n`` the min-norm point over the simplex's faces; ``0``
    when the hull (numerically) contains 0."""
    k = Vs.shape[1]
    if k <= 3:  # unit vertices: the foot of the plane if inside, else an edge's midpoint
        cands = [Vs[:, i] + Vs[:, j] for i, j in itertools.combinations(range(k), 2)]
        if k == 3:
            try:
                nrm = np.linalg.solve(Vs.T, np.ones(3))  # n . v_i = 1: the plane
                if np.all(np.linalg.solve(Vs, nrm) >= 0):
                    cands.append(nrm)
            except np.linalg.LinAlgError:
                pass
        if k == 1:
            cands = [Vs[:, 0]]
        lows = [float(np.min(n @ Vs)) / float(np.linalg.norm(n)) for n in cands
                if np.linalg.norm(n) > 0]
        return max(max(lows, default=0.0) * (1 - H_MARGIN), 0.0)
    best_n, best_norm = None, np.inf
    for size in range(1, k + 1):
        for sub in itertools.combinations(range(k), size):
            A = Vs[:, sub]
            if size == 1:
                coef = np.ones(1)
            else:  # min ||A a|| on sum(a) = 1 (affine hull): KKT system
                G = A.T @ A
                K = np.block([[G, np.ones((size, 1))], [np.ones((1, size)), np.zeros((1, 1))]])
                rhs = np.zeros(size + 1)
                rhs[-1] = 1.0
                try:
                    coef = np.linalg.solve(K, rhs)[:size]
                except np.linalg.LinAlgError:
                    continue
                if np.any(coef < -1e-12):
                    continue
            x = A @ coef
            nx = float(np.linalg.norm(x))
            if nx < best_norm:
                best_n, best_norm = x, nx
    if best_n is None or best_norm <= 0:
        return 0.0
    low = float(np.min(best_n @ Vs)) / best_norm
    return max(low * (1 - H_MARGIN), 0.0)


class _Search:
    """State of one branch and bound: per-cell bounds at every vertex, incumbent, counters."""

    def __init__(self, Lam, V, F, a, b, patterns, target, rtol, n_exact, iters, coarse,
                 max_work=np.inf):
        self.Lam, self.V, self.F, self.a, self.b = Lam, V, F, a, b
        self.patterns = patterns
        M = len(patterns)
        D = np.where(patterns, a, b)  # (M, N)
        Bc = np.einsum("nr,mn,nk->mrk", F, D, Lam)
        self.B = np.concatenate([Bc, -Bc])  # entry j: cell j % M, sign + (j < M) or -
        Sc = np.where(patterns, 1.0, -1.0)
        self.S = np.vstack([Sc, Sc])
        self.n_entries = 2 * M
        self.slack = 1 + 4e-15 * F.shape[0]
        self.target, self.rtol, self.coarse = float(target), float(rtol), float(coarse)
        self.n_exact, self.iters = n_exact, iters
        self.best, self.cands, self.n_nnls = 0.0, {}, 0
        self.vert, self.ub = [], []  # unit vertices and their per-entry bounds (nan: unknown)
        self.res = []  # per vertex: {entry: Proj_{K_P}(c_P(v))} (exact projections)
        self.mid = {}
        self.work, self.max_work = 0.0, float(max_work)

    def charge(self, cell_iters) -> None:
        """Count ``cell_iters`` cell-iterations of bound evaluations as work."""
        self.work += cell_iters / CELL_ITERS_PER_UNIT

    def affordable(self, units=1.0) -> bool:
        """True while ``units`` more work stays within the cap."""
        return self.work + units <= self.max_work

    @property
    def rtol_eff(self) -> float:
        """``rtol``, relaxed to ``coarse (best / target - 1)`` while the best value is well
        above the target (the dual bound of such a ``Lam`` is scaled by ``target / rho``
        anyway: a relative ``rtol_eff`` on ``rho`` is a small fraction of its shortfall)."""
        if self.target > 0 and self.best > self.target:
            return max(self.rtol, self.coarse * (self.best / self.target - 1))
        return self.rtol

    @property
    def tau(self) -> float:
        return max(self.best, self.target) * (1 + self.rtol_eff)

    def true_value(self, e) -> float:
        return float(np.linalg.norm(self.Lam.T @ _cells._act(self.F @ e, self.a, self.b)))

    def record(self, e) -> float:
        """Keep the column ``e`` if it is the best seen in its cell; returns its true value."""
        val = self.true_value(e)
        key = (self.F @ e > 0).tobytes()
        if val > self.cands.get(key, (-1.0,))[0]:
            self.cands[key] = (val, e)
        self.best = max(self.best, val)
        return val

    def exact(self, j, w, vid=None):
        """Exact projection of entry ``j`` at ``w``: ``(upper, e)``; records the column (and
        the projection ``val e`` at vertex ``vid``)."""
        val, e = _cells.cone_projection(self.F, self.S[j] > 0, self.B[j] @ w)
        self.n_nnls += 1
        self.work += 1.0
        if val > 0:
            self.record(e)
        if vid is not None:
            self.res[vid][j] = val * e
            self.ub[vid][j] = min(self.ub[vid][j], val * self.slack)  # nan: stays nan
        return val * self.slack, e

    def projection(self, vid, j):
        """``Proj_{K_P}(c_P(v))`` of entry ``j`` at vertex ``vid`` (computed once)."""
        if j not in self.res[vid]:
            self.exact(j, self.vert[vid], vid)
        return self.res[vid][j]

    def vertex(self, w) -> int:
        self.vert.append(w)
        self.ub.append(np.full(self.n_entries, np.nan))
        self.res.append({})
        return len(self.vert) - 1

    def midpoint(self, i, j) -> int:
        key = (min(i, j), max(i, j))
        if key not in self.mid:
            m = self.vert[i] + self.vert[j]
            self.mid[key] = self.vertex(m / np.linalg.norm(m))
        return self.mid[key]

    def bounds(self, vid, live, h=1.0):
        """Per-entry upper bounds of ``g_P`` at vertex ``vid`` on ``live`` (computed once): the
        dual bounds are pushed below ``h tau`` (``h`` of the node asking: what drops a cell
        there), cells still above ``tau`` are projected exactly."""
        ub = self.ub[vid]
        todo = live[np.isnan(ub[live])]
        if len(todo):
            w = self.vert[vid]
            C = self.B[todo] @ w  # (L, r)
            up = _cells._halfspace_bounds(self.F, C, self.S[todo]) * self.slack
            self.charge(len(todo))
            order = np.argsort(-up)
            top = 0.0
            for t in order[: self.n_exact]:  # exact for the top cells (columns, tight max)
                if up[t] <= max(self.tau, top) and t != order[0]:
                    break
                if t != order[0] and not self.affordable():
                    break
                val, _ = self.exact(todo[t], w, vid)
                up[t] = min(up[t], val)
                top = max(top, val)
            low = self.tau * max(h, 0.5)
            rest = np.flatnonzero(up > low)
            if len(rest) and self.affordable(len(rest) * self.iters / CELL_ITERS_PER_UNIT):
                up[rest] = _cells._dual_bounds(self.F, C[rest], self.S[todo[rest]], low,
                                               self.iters, 0.0, ub=up[rest])
                self.charge(len(rest) * self.iters)  # (pruned cells counted in full)
            # every cell still above the threshold gets its exact value: a loose bound there
            # would never shrink under refinement (within the work cap; the dual bounds left
            # in place are valid)
            for t in np.flatnonzero(up > self.tau)[np.argsort(-up[up > self.tau])]:
                if not self.affordable():
                    break
                if up[t] > self.tau:
                    up[t] = min(up[t], self.exact(todo[t], w, vid)[0])
            ub[todo] = up
        return ub[live]


def price_sphere(Lam: np.ndarray, V: np.ndarray, F: np.ndarray, a: float, b: float,
                 patterns: np.ndarray, *, target: float = 0.0, rtol: float = 1e-9,
                 max_nodes: int = 20_000, seeds=None, n_exact: int = 8,
                 iters: int = 60, coarse: float = 1e-3,
                 max_work: float = np.inf, deadline=None) -> SphereResult:
    """``rho(Lam) = max_{||u|| = 1} ||Lam^T s(H0 u)||`` by branch and bound over ``w``.

    Parameters
    ----------
    Lam : ndarray, shape (N, k)
    V, F, patterns
        ``V`` (d' x r) orthonormal basis of ``range(H0^T)``, ``F = H0 V`` and the cells'
        sign patterns (:func:`conic_dnn.two_layer.pricing.cell_patterns_for`).
    a, b : float
        The activation's slopes (positive side, negative side).
    target : float, default 0
        Directions whose value is at most ``target (1 + rtol)`` need not be resolved (the
        master's threshold ``2 lam``: below it the dual bound does not change).
    rtol : float, default 1e-9
        Relative tolerance of the search above ``max(best, target)``.
    coarse : float, default 1e-3
        With a target, the tolerance is ``max(rtol, coarse (best / target - 1))``: far from
        the master's optimum (``best >> target``) the search stops earlier; at convergence
        (``best -> target``) it is ``rtol``. ``SphereResult.rtol`` is the one used.
    max_nodes : int, default 20_000
        Node budget; when reached the bound returned is still rigorous (``closed=False``,
        ``capped=True``).
    max_work : float, default inf
        Work cap in units of one exact cell projection (module docstring: deterministic, not
        wall-clock); when reached the search stops with a rigorous, looser bound
        (``closed=False``, ``capped=True``). The seeding counts against it.
    seeds : iterable of ndarray (N-dim ``u`` in R^{d'}), optional
        Columns to start the incumbent from (e.g. the master's atoms).
    deadline : conic_dnn.core.budget.Deadline, optional
        Checked before each node: once expired the search stops as at the work cap (a
        rigorous, looser bound, ``capped=True``), so a time limit holds within one node.
    n_exact : int
        Exact cell projections per vertex (the cells of largest bound).
    iters : int
        Dual-bound iterations per vertex (:func:`.cells._dual_bounds`).

    Returns
    -------
    SphereResult
    """
    Lam = np.asarray(Lam, dtype=float)
    N, k = Lam.shape
    if k < 2:
        raise ValueError(f"Lam: price_sphere needs k >= 2 outputs, got shape {Lam.shape}")
    s = _Search(Lam, V, F, a, b, np.asarray(patterns, dtype=bool), target, rtol, n_exact,
                iters, coarse, max_work)
    _seed(s, seeds)
    everything = np.arange(s.n_entries)
    eye = np.eye(k)
    heap, dropped, n_nodes = [], 0.0, 0
    for signs in itertools.product((1.0, -1.0), repeat=k - 1):
        vids = [s.vertex(eye[i] * sg) for i, sg in enumerate(signs)] + [s.vertex(eye[k - 1])]
        dropped = _push(s, heap, vids, everything, dropped)
        n_nodes += 1
    closed, capped = True, False
    while heap:
        if -heap[0][0] <= s.tau:
            break
        if (n_nodes >= max_nodes or not s.affordable()
                or (deadline is not None and deadline.expired())):
            closed, capped = False, True
            break
        _, _, vids, live, parent = heapq.heappop(heap)
        W = np.array([s.vert[i] for i in vids])
        G = W @ W.T
        i, j = np.unravel_index(np.argmin(G + 3 * np.eye(k)), G.shape)  # longest edge
        m = s.midpoint(vids[i], vids[j])
        for drop in (i, j):
            child = list(vids)
            child[drop] = m
            dropped = _push(s, heap, child, live, dropped, parent)
            n_nodes += 1
    if closed or s.affordable():
        _polish(s)
    open_max = max((-h[0] for h in heap), default=0.0)
    upper = max(s.best, dropped, open_max)
    cands = sorted(((val, V @ e) for val, e in s.cands.values()), key=lambda c: -c[0])
    return SphereResult(float(upper), cands, closed, s.tau, s.rtol_eff, n_nodes, len(s.vert),
                        s.n_nnls, capped, s.work)


_counter = itertools.count()


def _push(s: _Search, heap, vids, live, dropped, parent=None) -> float:
    """Bound a node; push it with its live cells and their bounds (or drop it); returns the
    largest bound dropped so far. ``parent``: the live cells' bounds on the enclosing node
    (valid on this one too: a child's bound never exceeds its parent's, even when the work
    cap leaves its vertices with looser bounds)."""
    Ws = np.array([s.vert[i] for i in vids]).T
    h = min_norm_lower(Ws)
    U = np.column_stack([s.bounds(i, live, h) for i in vids])  # (L, k)
    cell = U.max(axis=1) / h * (1 + H_MARGIN) if h > 0 else np.full(len(live), np.inf)
    tau = s.tau
    hot = np.flatnonzero(cell > tau)
    if 0 < len(hot) <= MAX_HOT and h > 0 and s.affordable(len(hot) * len(vids)):
        lin = _linear_bound(s, vids, Ws, live[hot], h)  # exact projections at the vertices
        Uh = np.column_stack([s.ub[i][live[hot]] for i in vids])
        cell[hot] = np.minimum(np.minimum(cell[hot], Uh.max(axis=1) / h * (1 + H_MARGIN)), lin)
        tau = s.tau
    if parent is not None:
        cell = np.minimum(cell, parent)
    dead = cell <= tau
    if dead.any():
        dropped = max(dropped, float(cell[dead].max()))
    if dead.all():
        return dropped
    keep = live[~dead]
    heapq.heappush(heap, (-float(cell[~dead].max()), next(_counter), vids, keep, cell[~dead]))
    return dropped


def _linear_bound(s: _Search, vids, Ws, entries, h) -> np.ndarray:
    """Per entry, ``max_{w in node} ||L w|| + max_i ||r_i - L v_i|| / h`` with ``r_i`` the
    exact projections at the vertices and ``L = R V^{-1}`` (any ``L`` is valid; the maximum
    over the node by :func:`_node_max` for k <= 3, ``sigma_1(L)`` above).

    Valid: with ``x = sum a_i v_i`` and ``mu = sum a_i mu_i / ||x|| >= 0`` (``mu_i`` the NNLS
    multipliers, ``r_i = c_P(v_i) + A^T mu_i``), ``g_P(x / ||x||) <= ||c_P(x) + A^T mu|| / ..
    = ||sum a_i r_i|| / ||x|| <= ||L w|| + sum a_i ||r_i - L v_i|| / ||x||``. Tight where
    the projection is linear across the node (then ``r_i = L v_i``); also proposes the
    column at the top right singular vector of ``L`` when it lies in the node."""
    R = np.stack([np.stack([s.projection(i, j) for i in vids], axis=1) for j in entries])
    try:
        L = np.linalg.solve(Ws.T, np.swapaxes(R, 1, 2)).swapaxes(1, 2)  # L Ws = R
    except np.linalg.LinAlgError:
        return np.full(len(entries), np.inf)
    E = np.linalg.norm(R - L @ Ws, axis=1).max(axis=1)
    _, sv, Wt = np.linalg.svd(L)
    if Ws.shape[0] <= 3:  # max of ||L w|| over the node itself (at most sigma_1)
        sv = sv.copy()
        sv[:, 0] = [_node_max(Lj, Ws, Wj[0], sj) for Lj, Wj, sj in zip(L, Wt, sv[:, 0])]
    # rounding of r_i = c_i + A^T mu_i is relative to ||c_i|| + ||r_i|| (||A^T mu|| <= both)
    Cn = np.linalg.norm(s.B[entries] @ Ws, axis=1).max(axis=1)
    scale = Cn + np.linalg.norm(R, axis=1).max(axis=1) + sv[:, 0]
    out = (sv[:, 0] + (E + 1e-14 * scale) / h) * (1 + H_MARGIN) * s.slack
    top = int(np.argmax(out))
    if out[top] > s.tau:  # the node's likely maximiser: an incumbent candidate
        w = Wt[top, 0]
        a = np.linalg.solve(Ws, w)
        if np.all(a >= 0) or np.all(a <= 0):
            s.exact(int(entries[top]), w * np.sign(a.sum()))
    return out


_IN_TOL = 1e-9  # membership of a maximiser in a node: ambiguous cases count as inside (safe)


def _arc_max(L, p, q) -> float:
    """``max ||L w||`` over unit ``w`` on the arc from unit ``p`` to unit ``q`` (< pi): the
    restricted 2 x 2 form's top eigenvector if it lies on the arc, else an endpoint."""
    ends = max(float(np.linalg.norm(L @ p)), float(np.linalg.norm(L @ q)))
    e2 = q - (q @ p) * p
    n2 = np.linalg.norm(e2)
    if n2 <= 1e-12:
        return ends
    E = np.column_stack([p, e2 / n2])
    lam, Y = np.linalg.eigh((L @ E).T @ (L @ E))
    t = np.arctan2(Y[1, 1], Y[0, 1]) % np.pi
    T = np.arctan2(n2, q @ p)
    if t <= T + _IN_TOL or t >= np.pi - _IN_TOL:
        return max(ends, float(np.sqrt(max(lam[1], 0.0))))
    return ends


def _node_max(L, Ws, w_top, s_top) -> float:
    """``max ||L w||`` over the unit vectors of the cone of ``Ws`` (k = 2, 3): ``s_top`` when
    the top right singular vector ``w_top`` (either sign) lies in it, else the maximum over
    the boundary arcs (a local maximum of a quadratic form on the sphere is a top
    eigenvector). Never below the true maximum (ambiguous memberships count as inside)."""
    a = np.linalg.solve(Ws, w_top)
    tol = _IN_TOL * np.abs(a).max()
    if np.all(a >= -tol) or np.all(a <= tol):
        return float(s_top)
    k = Ws.shape[1]
    return max(_arc_max(L, Ws[:, i], Ws[:, j]) for i, j in itertools.combinations(range(k), 2))


def _one_output(s: _Search, w, n_seed=16, iters=20) -> list:
    """Columns of the one-output pricing at ``Lam w``, best first: exact
    (:func:`.cells.max_projection`) while the work cap affords its dual bounds, else the
    search of its ``n_seed`` most promising cells only (charged either way)."""
    n_entries = s.n_entries
    full = s.affordable(n_seed + n_entries * (iters + 2) / CELL_ITERS_PER_UNIT)
    _, cands, n = _cells.max_projection(s.F, s.Lam @ w, s.patterns, s.a, s.b, n_seed=n_seed,
                                        iters=iters, bound=full)
    s.n_nnls += n
    s.work += n
    s.charge(n_entries * ((iters + 2) if full else 2))
    return cands


def _ascend(s: _Search, e, iters=20):
    """Alternating maximisation from the column ``e``: ``w = Lam^T s(F e) / ||.||``, then the
    exact one-output pricing at ``w`` (all cells); stops when the value stops increasing."""
    val = s.true_value(e)
    for _ in range(iters):
        if not s.affordable(16):
            return
        x = s.Lam.T @ _cells._act(s.F @ e, s.a, s.b)
        nx = np.linalg.norm(x)
        if nx == 0:
            return
        w = x / nx
        cands = _one_output(s, w)
        if not cands:
            return
        e_new = cands[0][1]
        new = s.record(e_new)
        if new <= val * (1 + 1e-12):
            return
        e, val = e_new, new


def _seed(s: _Search, seeds):
    """Incumbent from the given columns (and random output directions) by alternating
    maximisation."""
    starts = []
    if seeds is not None:
        for u in seeds:
            e = s.V.T @ np.asarray(u, dtype=float)
            if np.linalg.norm(e) > 0:
                starts.append(e / np.linalg.norm(e))
                s.record(starts[-1])  # a column in its own right (true value)
    k = s.Lam.shape[1]
    for i, w in enumerate(np.eye(k)):
        if i > 0 and not s.affordable(16):
            break
        cands = _one_output(s, w)
        if cands:
            starts.append(cands[0][1])
    vals = [s.true_value(e) for e in starts]
    for t in np.argsort(vals)[::-1][:2]:
        _ascend(s, starts[t], iters=4)


def _polish(s: _Search):
    """Alternating maximisation from the best few columns found (better columns; the bound
    is unaffected)."""
    top = sorted(s.cands.values(), key=lambda c: -c[0])[:1]
    for _, e in top:
        _ascend(s, e, iters=3)
