"""The restricted master of column generation: a group lasso over neuron directions.

``min_{V, c} (1/N) ||A V + bias 1 c^T - Y||^2 + 2 lam sum_j ||v_j|| + lam ||c||^2`` with
``A = s(H0 U)`` (one column per unit direction ``u_j``). :func:`master_numpy` (block
descent with the exact group soft-threshold ``v_j = max(0, 1 - N lam / ||g_j||) g_j /
||a_j||^2``, then a damped Newton polish on the support; stops on a duality gap of 1e-12 and a
KKT residual of 1e-9) is the default for one output; :func:`master_cvxpy` (an SOCP) is the
reference and the fallback.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np

from ..solvers import SolveInfo, run

__all__ = ["master_numpy", "master_cvxpy"]


def master_cvxpy(problem, U, solver):
    """Group lasso over the columns of ``U`` (d' x m): returns ``(V (m, k), c (k,), info)``."""
    N, k, lam, beta = problem.N, problem.k, problem.lam, problem.bias
    A = problem.activation(problem.H0 @ U)
    Vv = cp.Variable((U.shape[1], k))
    Z = A @ Vv
    obj = 2 * lam * cp.sum(cp.norm(Vv, 2, axis=1))
    c = None
    if beta > 0:
        c = cp.Variable(k)
        Z = Z + beta * np.ones((N, 1)) @ cp.reshape(c, (1, k), order="C")
        obj = obj + lam * cp.sum_squares(c)
    prob = cp.Problem(cp.Minimize(cp.sum_squares(Z - problem.Y) / N + obj))
    info = run(prob, solver, warn=False)
    cv = np.asarray(c.value, dtype=float) if c is not None else np.zeros(k)
    return np.asarray(Vv.value, dtype=float), cv, info


def master_numpy(problem, U, V0=None, c0=None, *, gap_tol=1e-12, kkt_tol=1e-9,
                  max_rounds=10):
    """The restricted master in numpy: returns ``(V (m, k), c (k,), info, converged)``.

    Block-coordinate descent with the exact group soft-threshold per atom: with
    ``g_j = a_j^T R_j`` (``a_j = s(H0 u_j)``, ``R_j`` the residual without atom ``j``),
    minimising ``||a_j v^T - R_j||^2 / N + 2 lam ||v||`` over ``v`` (times ``N / 2``:
    ``||a_j||^2 ||v||^2 / 2 - g_j^T v + N lam ||v||``) gives
    ``v_j = max(0, 1 - N lam / ||g_j||) g_j / ||a_j||^2``; the output bias minimises
    ``||beta 1 c^T - R||^2 / N + lam ||c||^2``: ``c = beta R^T 1 / (N (beta^2 + lam))``.
    BCD alone crawls on the nearly collinear ReLU features of neighbouring directions, so after
    a few passes the support is polished by a damped Newton method (the objective is smooth
    there; for ``k = 1`` a step stops where an atom changes sign and drops it, for ``k > 1`` a
    BCD pass over the support after each step zeroes atoms exactly). Converged when the duality
    gap over the dictionary (``Lambda = -grad C`` scaled into ``max_j ||A_j^T Lambda|| <= 2
    lam``) is at most ``gap_tol`` relative AND the KKT residual (``A_j^T Lambda = 2 lam v_j /
    ||v_j||`` on the support, ``<= 2 lam`` off it, ``beta Lambda^T 1 = 2 lam c``) is at most
    ``kkt_tol`` relative to ``2 lam``; otherwise ``converged`` is False (the caller falls back
    to the cvxpy master). Warm start: ``V0`` rows aligned with the columns of ``U``.
    """
    N, k, lam, beta = problem.N, problem.k, problem.lam, problem.bias
    Y = np.asarray(problem.Y, dtype=float)
    A = problem.activation(problem.H0 @ U)
    m = A.shape[1]
    G = A.T @ A
    diag = np.diag(G).copy()
    AtY = A.T @ Y
    s = A.sum(axis=0)
    ysum = Y.sum(axis=0)
    V = np.zeros((m, k)) if V0 is None else np.array(V0, dtype=float)
    live = diag > 1e-300
    V[~live] = 0.0
    c = np.zeros(k) if (c0 is None or beta == 0) else np.array(c0, dtype=float)
    thr = N * lam
    cden = N * (beta * beta + lam)

    def objective(V, c):
        R = A @ V + beta * c[None, :] - Y
        return (float(np.sum(R * R)) / N + 2 * lam * float(np.sum(np.linalg.norm(V, axis=1)))
                + lam * float(c @ c))

    def bcd(idx, Q):
        for j in idx:
            vj = V[j]
            g = AtY[j] - Q[j] + diag[j] * vj
            if beta > 0:
                g = g - (beta * s[j]) * c
            ng = np.sqrt(g @ g)
            if ng <= thr:
                if not vj.any():
                    continue
                new = np.zeros(k)
            else:
                new = ((1.0 - thr / ng) / diag[j]) * g
            Q += np.outer(G[:, j], new - vj)
            V[j] = new
        if beta > 0:
            c[:] = beta * (ysum - V.T @ s) / cden

    def newton(S):
        """Newton on the support S (smooth there), with line search on the objective."""
        nonlocal V, c
        f0 = objective(V, c)
        for _ in range(60):
            S = S[np.any(V[S] != 0, axis=1)]
            nS = len(S)
            if nS == 0:
                return
            GS = G[np.ix_(S, S)]
            sS = s[S]
            vS = V[S]
            nv = np.linalg.norm(vS, axis=1)
            if np.any(nv == 0):
                return
            W = vS / nv[:, None]
            R_At = GS @ vS + beta * np.outer(sS, c) - AtY[S]  # A_S^T (Z - Y)
            gV = 2 / N * R_At + 2 * lam * W
            H = np.kron(2 / N * GS, np.eye(k))
            for i in range(nS):
                H[i*k:(i+1)*k, i*k:(i+1)*k] += 2 * lam * (np.eye(k) - np.outer(W[i], W[i])) / nv[i]
            grad = gV.ravel()
            if beta > 0:
                rsum = V.T @ s + beta * N * c - ysum  # (Z - Y)^T 1
                gc = 2 / N * beta * rsum + 2 * lam * c
                Hvc = np.kron(2 / N * beta * sS[:, None], np.eye(k))  # (nS k) x k
                Hcc = (2 * beta * beta + 2 * lam) * np.eye(k)
                H = np.block([[H, Hvc], [Hvc.T, Hcc]])
                grad = np.concatenate([grad, gc])
            reg = 1e-14 * max(np.abs(np.diag(H)).max(), 1e-300)
            try:
                step = -np.linalg.solve(H + reg * np.eye(len(grad)), grad)
            except np.linalg.LinAlgError:
                return
            dV = step[:nS * k].reshape(nS, k)
            dc = step[nS * k:] if beta > 0 else np.zeros(k)
            t = 1.0
            if k == 1:  # stop at the first sign change (an atom leaving the support)
                cross = (vS[:, 0] * (vS[:, 0] + dV[:, 0]) < 0)
                if cross.any():
                    ts = -vS[cross, 0] / dV[cross, 0]
                    t = float(min(1.0, ts.min()))
            accepted = False
            for _ls in range(40):
                Vn = V.copy()
                Vn[S] = vS + t * dV
                if k == 1 and t < 1.0:
                    Vn[S[np.abs(Vn[S, 0]) <= 1e-15 * np.abs(vS[:, 0]).max()], 0] = 0.0
                    # snap the crossing atom to zero
                    jmin = int(np.argmin(np.abs(Vn[S, 0]) / np.maximum(np.abs(vS[:, 0]), 1e-300)))
                    Vn[S[jmin], 0] = 0.0
                cn = c + t * dc
                fn = objective(Vn, cn)
                if fn <= f0:
                    accepted = True
                    break
                t *= 0.5
            if not accepted:
                return
            V, c = Vn, cn
            if k > 1:  # let atoms leave the support exactly (group soft-threshold)
                bcd(S, G @ V)
                fn = objective(V, c)
            dec = f0 - fn
            f0 = fn
            if dec <= 1e-16 * max(f0, 1e-300) and t == 1.0:
                return

    rounds = 0
    P = gap = res = np.inf
    idx_all = np.flatnonzero(live)
    while rounds < max_rounds:
        rounds += 1
        Q = G @ V
        for _ in range(3):
            bcd(idx_all, Q)
        S = np.flatnonzero(np.any(V != 0, axis=1))
        newton(S)
        Q = G @ V
        bcd(idx_all, Q)  # clean-up pass (exact zeros / new atoms)
        S2 = np.flatnonzero(np.any(V != 0, axis=1))
        if not np.array_equal(S, S2):
            newton(S2)
        # certificate over the dictionary
        R = A @ V + beta * c[None, :] - Y
        Lam = -2.0 * R / N
        AtLam = A.T @ Lam
        vn = np.linalg.norm(V, axis=1)
        P = float(np.sum(R * R)) / N + 2 * lam * float(vn.sum()) + lam * float(c @ c)
        rn = np.linalg.norm(AtLam, axis=1)
        rho = float(rn.max(initial=0.0))
        lin = float(np.sum(Lam * Y))
        quad = N / 4 * float(np.sum(Lam**2))
        if beta > 0:
            quad += beta**2 * float(np.sum(Lam.sum(axis=0) ** 2)) / (4 * lam)
        t_max = 2 * lam / rho if rho > 0 else np.inf
        t = lin / (2 * quad) if quad > 0 else (t_max if lin > 0 else 0.0)
        t = float(np.clip(t, 0.0, t_max))
        D = t * lin - t * t * quad
        on = vn > 0
        kkt = np.zeros(m)
        kkt[on] = np.linalg.norm(AtLam[on] - 2 * lam * V[on] / vn[on, None], axis=1)
        kkt[~on] = np.maximum(rn[~on] - 2 * lam, 0.0)
        res = float(kkt.max(initial=0.0)) / (2 * lam)
        if beta > 0:
            res = max(res, float(np.linalg.norm(beta * Lam.sum(axis=0) - 2 * lam * c)) / (2 * lam))
        gap = P - D
        if gap <= gap_tol * max(P, 1e-300) and res <= kkt_tol:
            return V, c, SolveInfo("optimal", "numpy", P, [("numpy", "optimal")],
                                   iterations=rounds), True
    return V, c, SolveInfo("not converged", "numpy", P, [("numpy", "max_rounds")],
                           iterations=rounds), False


