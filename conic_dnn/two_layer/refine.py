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
neurons whose ``z_j`` vanishes leave. The result is only a candidate: column generation takes
it when its forward-pass loss is lower, and certifies it by exact pricing as any other network.
"""

from __future__ import annotations

import numpy as np

from .smooth_master import row_hessians

__all__ = ["refine_directions"]

_FACE_TOL = 1e-12


def _groups(problem, U, v):
    """``[(sign, pattern, face_rows, w)]``: neurons of one cell, output sign and face merged
    (``w = sum |v_j| u_j``)."""
    H0 = problem.H0
    scale = np.linalg.norm(H0, axis=1)
    out = {}
    for j in np.flatnonzero(v):
        z = H0 @ U[:, j]
        zero = np.abs(z) <= _FACE_TOL * np.maximum(scale, 1e-300)
        key = (float(np.sign(v[j])), (z > 0).tobytes(), zero.tobytes())
        g = out.setdefault(key, [np.sign(v[j]), z > 0, zero, np.zeros(H0.shape[1])])
        g[3] = g[3] + abs(v[j]) * U[:, j]
    return list(out.values())


def _setup(problem, groups):
    """Face bases, the design ``M`` (with the bias column), the cell constraints ``C x >= 0``
    (block diagonal) and the start ``z``; None when a face is a point."""
    H0 = problem.H0
    Bs, Ms, zs, Cs = [], [], [], []
    for sgn, pat, zero, w in groups:
        A0 = H0[zero]
        if len(A0):
            _, sv, Vt = np.linalg.svd(A0)
            rank = int(np.sum(sv > 1e-10 * max(sv.max(initial=0.0), 1e-300)))
            B = Vt[rank:].T
        else:
            B = np.eye(H0.shape[1])
        if B.shape[1] == 0:
            return None
        D = np.where(pat, problem.activation.a, problem.activation.b)
        Bs.append(B)
        Ms.append(sgn * (D[:, None] * H0) @ B)
        zs.append(B.T @ w)
        S = np.where(pat, 1.0, -1.0)
        Cs.append((S[~zero, None] * H0[~zero]) @ B)  # off the face: stay on the cell's side
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

    f0 = value(x)
    for _ in range(max_steps):
        nrm = norms(x)
        alive = nrm > 0
        Z = (M @ x)[:, None]
        g = M.T @ loss.gradient(Z, Y)[:, 0]
        h = row_hessians(loss, Z, Y)[:, 0, 0]
        H = M.T @ (h[:, None] * M)
        for i in np.flatnonzero(alive):
            sl = slice(cuts[i], cuts[i + 1])
            wi = x[sl] / nrm[i]
            g[sl] += 2 * lam * wi
            H[sl, sl] += 2 * lam * (np.eye(len(wi)) - np.outer(wi, wi)) / nrm[i]
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


def refine_directions(problem, U, V, c, max_steps: int = 30, max_faces: int = 6):
    """``(U_new (d', J), V_new (J, 1), c_new)`` or ``None``: the Newton-refined neurons of a
    one-output master solution (``V`` (m, 1), ``c`` (1,)), unit directions in ``U_new``. A
    step that reaches a new face of a cell stops there and the faces are recomputed (at most
    ``max_faces`` times)."""
    beta, N = problem.bias, problem.N
    nb = int(beta > 0)
    v = np.asarray(V, dtype=float)[:, 0]
    cval = np.asarray(c, dtype=float)[:1]
    for _ in range(max_faces):
        groups = _groups(problem, U, v)
        if not groups:
            return None
        setup = _setup(problem, groups)
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
            break
    return U, v[:, None], cval
