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


def refine_directions(problem, U, V, c, max_steps: int = 30):
    """``(U_new (d', J), V_new (J, 1), c_new)`` or ``None``: the Newton-refined neurons of a
    one-output master solution (``V`` (m, 1), ``c`` (1,)), unit directions in ``U_new``."""
    H0, N, lam, beta, loss = problem.H0, problem.N, problem.lam, problem.bias, problem.loss
    Y = np.asarray(problem.Y, dtype=float)
    groups = _groups(problem, U, np.asarray(V, dtype=float)[:, 0])
    if not groups:
        return None
    Bs, Ms, zs, cons = [], [], [], []
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
        # stay in the cell: S_i H0_i B z >= 0 on the rows off the face
        S = np.where(pat, 1.0, -1.0)
        cons.append((S[~zero, None] * H0[~zero]) @ B)
    sizes = [B.shape[1] for B in Bs]
    cuts = np.cumsum([0] + sizes)
    M = np.hstack(Ms)
    nb = int(beta > 0)
    if nb:
        M = np.hstack([M, beta * np.ones((N, 1))])
    x = np.concatenate(zs + ([np.asarray(c, dtype=float)[:1]] if nb else []))
    J = len(groups)

    def value(x):
        Z = (M @ x)[:, None]
        pen = sum(np.linalg.norm(x[cuts[i]:cuts[i + 1]]) for i in range(J))
        return loss.value(Z, Y) + 2 * lam * pen + (lam * x[-1] ** 2 if nb else 0.0)

    def feasible(x):
        return all(np.all(cons[i] @ x[cuts[i]:cuts[i + 1]] >= 0) for i in range(J))

    if not feasible(x):
        return None
    f0 = value(x)
    alive = np.ones(J, dtype=bool)
    for _ in range(max_steps):
        Z = (M @ x)[:, None]
        g = M.T @ loss.gradient(Z, Y)[:, 0]
        h = row_hessians(loss, Z, Y)[:, 0, 0]
        H = M.T @ (h[:, None] * M)
        for i in np.flatnonzero(alive):
            zi = x[cuts[i]:cuts[i + 1]]
            n = np.linalg.norm(zi)
            wi = zi / n
            g[cuts[i]:cuts[i + 1]] += 2 * lam * wi
            H[cuts[i]:cuts[i + 1], cuts[i]:cuts[i + 1]] += 2 * lam * (
                np.eye(sizes[i]) - np.outer(wi, wi)) / n
        if nb:
            g[-1] += 2 * lam * x[-1]
            H[-1, -1] += 2 * lam
        dead = np.concatenate([np.full(sizes[i], not alive[i]) for i in range(J)]
                              + ([np.array([False])] if nb else []))
        if np.abs(g[~dead]).max(initial=0.0) <= 1e-13 * lam:
            break
        H[dead] = 0.0
        H[:, dead] = 0.0
        H[dead, dead] = 1.0
        g[dead] = 0.0
        try:
            step = -np.linalg.solve(H + 1e-14 * np.abs(np.diag(H)).max() * np.eye(len(x)), g)
        except np.linalg.LinAlgError:
            break
        t = 1.0
        for _ in range(40):
            xn = x + t * step
            for i in np.flatnonzero(alive):  # a vanishing neuron leaves
                if np.linalg.norm(xn[cuts[i]:cuts[i + 1]]) <= 1e-9 * np.linalg.norm(
                        x[cuts[i]:cuts[i + 1]]):
                    xn[cuts[i]:cuts[i + 1]] = 0.0
            if feasible(xn):
                fn = value(xn)
                if fn <= f0 + (4e-16 * abs(f0) if t == 1.0 else 0.0):
                    break
            t *= 0.5
        else:
            break
        x, f0 = xn, min(f0, fn)
        alive = np.array([np.any(x[cuts[i]:cuts[i + 1]] != 0) for i in range(J)])
    Ws = [Bs[i] @ x[cuts[i]:cuts[i + 1]] for i in range(J) if alive[i]]
    if not Ws:
        return None
    W = np.array(Ws).T  # w_j = B_j z_j: direction in the cell, norm the outgoing |weight|
    norms = np.linalg.norm(W, axis=0)
    U_new = W / norms
    V_new = (norms * np.array([groups[i][0] for i in range(J) if alive[i]]))[:, None]
    return U_new, V_new, (x[-1:].copy() if nb else np.zeros(1))
