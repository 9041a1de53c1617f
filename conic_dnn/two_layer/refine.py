"""Direction refinement for column generation, one output: a Newton method over the neurons'
directions inside their cells (the tail of column generation converges only linearly).

A master solution ``(u_j, v_j)`` puts each neuron in a cell ``P_j`` of the arrangement
(``sign(H0 u_j)``) and on a face of it (the rows with ``H0_i u_j = 0``: the pricing's cone
projections land exactly on faces). On a cell the activation is linear, ``s(H0 w) = D_P H0 w``,
so with ``w_j = |v_j| u_j = B_j z_j`` (``B_j`` an orthonormal basis of the face's span; neurons
of one cell, sign and face merged) the network is
``sum_j sign(v_j) D_j H0 B_j z_j`` and the restricted problem

    min_z C(sum_j M_j z_j + beta c 1) + 2 lam sum_j ||z_j|| + lam c^2,   M_j = sign_j D_j H0 B_j

(the Pilanci-Ergen program on these cells and faces, without the cone constraints, which are
checked instead) is smooth where every ``z_j != 0``: damped Newton. The step is cut so that
every ``B_j z_j`` stays in its cell (then the refined network's forward pass is this model);
neurons whose ``z_j`` vanishes leave. Once the Newton method is stationary on its faces, the
local pricing :func:`_local_moves` prices each neuron's own cell and its neighbours across its
face rows at the current ``Lambda``; an improving one (a face to leave, a kink to cross: the
moves the tail of column generation is made of) is applied and the Newton method runs again.
The result is only a candidate: column generation takes it when its forward-pass loss is
lower, and certifies it by exact pricing as any other network.
"""

from __future__ import annotations

import numpy as np

from .cells import cone_projection
from .smooth_master import row_hessians

__all__ = ["refine_directions"]

_FACE_TOL = 1e-12
#: A group of norm at most this times the largest is a neuron that has left (a step cut at its
#: cone's apex leaves it at rounding size, where ``1 / ||z||`` would stall the Newton method).
_DEAD_TOL = 1e-9


def _groups(problem, U, v):
    """``[(sign, pattern, face_rows, w)]``: neurons of one cell, output sign and face merged
    (``w = sum |v_j| u_j``)."""
    H0 = problem.H0
    live = np.flatnonzero(v)
    Z = H0 @ U[:, live]  # (N, J): one product for all neurons
    zero = np.abs(Z) <= _FACE_TOL * np.maximum(np.linalg.norm(H0, axis=1), 1e-300)[:, None]
    pos = Z > 0
    out = {}
    for i, j in enumerate(live):
        key = (float(np.sign(v[j])), pos[:, i].tobytes(), zero[:, i].tobytes())
        g = out.get(key)
        if g is None:
            out[key] = [np.sign(v[j]), pos[:, i].copy(), zero[:, i].copy(),
                        abs(v[j]) * U[:, j]]
        else:
            g[3] = g[3] + abs(v[j]) * U[:, j]
    return list(out.values())


def face_blocks(problem, pattern, zero):
    """``(B, M, C)`` of a cell ``pattern`` and its face rows ``zero``: an orthonormal basis
    ``B`` of the face's span, ``D_P H0 B`` and the cell rows off the face ``S_P H0 B``
    (``C z >= 0`` keeps ``B z`` on the cell's side); ``B`` has no column at a point."""
    H0 = problem.H0
    A0 = H0[zero]
    if len(A0):
        _, sv, Vt = np.linalg.svd(A0)
        rank = int(np.sum(sv > 1e-10 * max(sv.max(initial=0.0), 1e-300)))
        B = Vt[rank:].T
    else:
        B = np.eye(H0.shape[1])
    D = np.where(pattern, problem.activation.a, problem.activation.b)
    S = np.where(pattern, 1.0, -1.0)
    return B, (D[:, None] * H0) @ B, (S[~zero, None] * H0[~zero]) @ B


def _setup(problem, groups, cache=None):
    """Face bases, the design ``M`` (with the bias column), the cell constraints ``C x >= 0``
    (block diagonal) and the start ``z``; None when a face is a point. ``cache`` (a dict)
    keeps each (sign, cell, face)'s basis and blocks between the calls of one refinement."""
    cache = {} if cache is None else cache
    Bs, Ms, zs, Cs = [], [], [], []
    for sgn, pat, zero, w in groups:
        key = (float(sgn), pat.tobytes(), zero.tobytes())
        if key not in cache:
            B, M, C = face_blocks(problem, pat, zero)
            if B.shape[1] == 0:
                return None
            cache[key] = (B, sgn * M, C)  # (a sign flip: exact)
        B, Mi, Ci = cache[key]
        Bs.append(B)
        Ms.append(Mi)
        zs.append(B.T @ w)
        Cs.append(Ci)
    return Bs, Ms, zs, Cs


def _newton(problem, M, x, C, cuts, nb, max_steps):
    """Damped Newton on the smooth restricted problem; a step is cut where a cell constraint
    becomes active (returns ``(x, blocked)``: blocked when that happened)."""
    lam, loss, Y = problem.lam, problem.loss, np.asarray(problem.Y, float)
    J = len(cuts) - 1
    gid = np.repeat(np.arange(J), np.diff(cuts))
    nz = len(gid)

    def norms(x):
        return np.sqrt(np.bincount(gid, weights=x[:nz] ** 2, minlength=J))

    def value(x):
        Z = (M @ x)[:, None]
        return (loss.value(Z, Y) + 2 * lam * float(norms(x).sum())
                + (lam * float(x[-1]) ** 2 if nb else 0.0))

    n = len(x)
    same = np.zeros((n, n), dtype=bool)  # pairs of coordinates of one group
    same[:nz, :nz] = gid[:, None] == gid[None, :]
    f0 = value(x)
    for _ in range(max_steps):
        nrm = norms(x)
        tiny = (nrm > 0) & (nrm <= _DEAD_TOL * nrm.max(initial=0.0))
        if tiny.any():  # a neuron shrunk onto its cone's apex (a step cut there): it leaves
            x = x.copy()
            x[:nz][tiny[gid]] = 0.0
            nrm[tiny] = 0.0
            f0 = value(x)
        alive = nrm > 0
        Z = (M @ x)[:, None]
        g = M.T @ loss.gradient(Z, Y)[:, 0]
        h = row_hessians(loss, Z, Y)[:, 0, 0]
        H = M.T @ (h[:, None] * M)
        # the norms' gradient and Hessian, 2 lam (I - w w^T) / ||z|| on each live group's block
        inv = np.zeros(n)
        inv[:nz] = np.where(alive, 1.0 / np.where(alive, nrm, 1.0), 0.0)[gid]
        w = x * inv
        g += 2 * lam * w
        H += (2 * lam) * (same * (np.diag(inv) - np.outer(w, w) * inv[:, None]))
        if nb:
            g[-1] += 2 * lam * x[-1]
            H[-1, -1] += 2 * lam
        dead = np.concatenate([~alive[gid], np.zeros(nb, dtype=bool)])
        if np.abs(g[~dead]).max(initial=0.0) <= 1e-13 * lam:
            return x, False
        H[dead] = 0.0
        H[:, dead] = 0.0
        H[dead, dead] = 1.0
        g[dead] = 0.0
        try:
            step = -np.linalg.solve(H + 1e-14 * np.abs(np.diag(H)).max() * np.eye(len(x)), g)
        except np.linalg.LinAlgError:
            return x, False
        cx, cd = C @ x, C @ step
        neg = cd < 0
        t_max = float(np.min(-cx[neg] / cd[neg], initial=np.inf))
        t = min(1.0, max(t_max, 0.0))
        blocked = t_max < 1.0
        for _ in range(40):
            xn = x + t * step
            fn = value(xn)
            if fn <= f0 + (4e-16 * abs(f0) if t == 1.0 else 0.0):
                break
            t *= 0.5
        else:
            return x, False
        x, f0 = xn, min(f0, fn)
        if blocked and t == min(1.0, t_max):
            return x, True
    return x, False


def refine_directions(problem, U, V, c, max_steps: int = 30, max_faces: int = 15,
                      local: bool = True, cache: dict | None = None):
    """``(U_new (d', J), V_new (J, 1), c_new)`` or ``None``: the Newton-refined neurons of a
    one-output master solution (``V`` (m, 1), ``c`` (1,)), unit directions in ``U_new``. A
    step that reaches a new face of a cell stops there and the faces are recomputed; with
    ``local``, a stationary point is followed by the local pricing (:func:`_local_moves`) and,
    when it moves a neuron, by another Newton pass (faces and passes: at most ``max_faces``
    in all). ``cache``: a dict kept by the caller between the refinements of one problem
    (the face bases and blocks of the (sign, cell, face) triples already met)."""
    beta, N = problem.bias, problem.N
    nb = int(beta > 0)
    v = np.asarray(V, dtype=float)[:, 0]
    cval = np.asarray(c, dtype=float)[:1]
    cache = {} if cache is None else cache
    for _ in range(max_faces):
        groups = _groups(problem, U, v)
        if not groups:
            return None
        setup = _setup(problem, groups, cache)
        if setup is None:
            return None
        Bs, Ms, zs, Cs = setup
        sizes = [B.shape[1] for B in Bs]
        cuts = np.cumsum([0] + sizes)
        M = np.hstack(Ms + ([beta * np.ones((N, 1))] if nb else []))
        C = np.zeros((sum(len(Ci) for Ci in Cs), len(M[0])))
        r0 = 0
        for i, Ci in enumerate(Cs):
            C[r0:r0 + len(Ci), cuts[i]:cuts[i + 1]] = Ci
            r0 += len(Ci)
        x = np.concatenate(zs + ([cval] if nb else []))
        if np.any(C @ x < -1e-12 * max(np.abs(C @ x).max(initial=0.0), 1e-300)):
            return None
        x, blocked = _newton(problem, M, x, C, cuts, nb, max_steps)
        W = np.array([Bs[i] @ x[cuts[i]:cuts[i + 1]] for i in range(len(Bs))]).T
        norms = np.linalg.norm(W, axis=0)
        live = norms > 0
        if not live.any():
            return None
        U = W[:, live] / norms[live]
        v = norms[live] * np.array([g[0] for g in groups])[live]
        cval = x[-1:].copy() if nb else np.zeros(1)
        if not blocked:
            if not local:
                break
            moved = _local_moves(problem, U, v, cval)
            if moved is None:
                break
            U, v = moved
    return U, v[:, None], cval


def _local_moves(problem, U, v, c, rtol=1e-9, max_moves=8):
    """Local pricing of the refined neurons: ``(U, v)`` with the improving moves applied, or
    None when there is none. For each neuron on a face (rows with ``H0_i u = 0``) the cells
    around it (both sides of each face row: the neuron's own cell, which its face may be
    keeping it from, and its neighbours across a kink) are priced exactly at the current
    ``Lambda = -grad C(Z)`` (:func:`~conic_dnn.two_layer.cells.cone_projection`); a cell whose
    value exceeds ``2 lam (1 + rtol)`` improves the restricted problem along its projection
    ``e``: in the neuron's own cell ``w <- w + t e`` (same cell, a smaller face), across a kink
    a new neuron ``t e``, ``t`` a damped Newton step of the loss along that direction. These
    are the moves a full pricing round would find first (measured: the tail of column
    generation is made of them), at a few projections instead of all cells."""
    H0, lam, loss, act = problem.H0, problem.lam, problem.loss, problem.activation
    Y = np.asarray(problem.Y, float)
    scale = np.maximum(np.linalg.norm(H0, axis=1), 1e-300)
    cval = float(c[0]) if problem.bias > 0 else 0.0
    Z = act(H0 @ U) @ v + problem.bias * cval
    f = loss.value(Z[:, None], Y)
    Lam = -loss.gradient(Z[:, None], Y)[:, 0]
    cands = []
    for j in range(U.shape[1]):
        z = H0 @ U[:, j]
        zero = np.abs(z) <= _FACE_TOL * scale
        if not zero.any():
            continue
        sgn = np.sign(v[j])
        cands += [(val, j, own, sgn, D, e)
                  for val, own, D, e in cells_around(problem, z > 0, zero, sgn * Lam, rtol)]
    if not cands:
        return None
    cands.sort(key=lambda t: -t[0])
    U, v, moved = U.copy(), v.copy(), False
    for _val, j, own, sgn, D, e in cands[:max_moves]:
        a = sgn * (D * (H0 @ e))
        Lam = -loss.gradient(Z[:, None], Y)[:, 0]
        slope = float(Lam @ a) - 2 * lam
        if slope <= 0:
            continue
        h = row_hessians(loss, Z[:, None], Y)[:, 0, 0]
        t = armijo_step(slope, float(a @ (h * a)), f,
                        lambda t, Z=Z, a=a: loss.value((Z + t * a)[:, None], Y) + 2 * lam * t)
        if t is None:
            continue
        if own:  # the same cell: w + t e (both in its closed cone: the network moves by t a)
            w = abs(v[j]) * U[:, j] + t * e
            nw = float(np.linalg.norm(w))
            U[:, j], v[j] = w / nw, sgn * nw
        else:
            U = np.hstack([U, e[:, None]])
            v = np.append(v, sgn * t)
        Z = Z + t * a
        f = loss.value(Z[:, None], Y)
        moved = True
    return (U, v) if moved else None


def cells_around(problem, base, zero, lam_dir, rtol=1e-9):
    """``[(value, own, D, e)]``: the improving cells around a neuron on a face, for the local
    moves of both refinements. ``base`` is the neuron's own cell (its face rows ``zero`` on
    the non-positive side), the others its neighbours across one face row each; each is
    priced exactly at the one-output dual ``lam_dir`` (N,)
    (:func:`~conic_dnn.two_layer.cells.cone_projection` of ``H0^T D_P lam_dir``) and kept
    when its value exceeds ``2 lam (1 + rtol)``; ``D`` its slopes, ``e`` its maximiser."""
    H0, act = problem.H0, problem.activation
    pats = [(base, True)]
    for i in np.flatnonzero(zero):  # a neighbour across face row i
        P = base.copy()
        P[i] = True
        pats.append((P, False))
    out = []
    for P, own in pats:
        D = np.where(P, act.a, act.b)
        val, e = cone_projection(H0, P, H0.T @ (D * lam_dir))
        if val > 2 * problem.lam * (1 + rtol):
            out.append((val, own, D, e))
    return out


def armijo_step(slope, curv, f, value):
    """The step ``t`` of a local move: the Newton step ``slope / curv`` (1 without
    curvature), halved until ``value(t) < f - t slope / 4`` (Armijo, a quarter of the
    first-order decrease); None after 30 halvings."""
    t = slope / curv if curv > 0 else 1.0
    for _ in range(30):
        if value(t) < f - 0.25 * t * slope:
            return t
        t *= 0.5
    return None
