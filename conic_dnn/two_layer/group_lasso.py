"""The restricted master of column generation: a group lasso over neuron directions.

``min_{V, c} C(A V + bias 1 c^T) + 2 lam sum_j ||v_j|| + lam ||c||^2`` with ``A = s(H0 U)``
(one column per unit direction ``u_j``), ``C`` the problem's loss (the squared loss
``(1/N) ||. - Y||^2`` for the numpy master). :func:`master_numpy` (block
descent with the exact group soft-threshold ``v_j = max(0, 1 - N lam / ||g_j||) g_j /
||a_j||^2``, then a damped Newton polish on the support; stops on a duality gap of 1e-12 and a
KKT residual of 1e-9; for one output an exact active-set solve, :func:`_active_set_k1`, runs
first and the block descent only when it fails) is the default for the squared loss;
:func:`master_cvxpy` (an SOCP) is the reference, the fallback and the master of every other
loss (it also returns the multiplier ``Lambda`` of ``Z = A V + bias 1 c^T``).
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np

from ..core.errors import SolverFailedError
from ..solvers import SolveInfo, _check_solver, run

__all__ = ["master_numpy", "master_cvxpy", "MASTER_CLARABEL"]

#: Clarabel's settings for :func:`master_cvxpy` on the losses other than the squared one,
#: tighter than :func:`conic_dnn.solvers.run`'s defaults (1e-9): the master's accuracy sets
#: the dual point and so the certificate. Measured in one process: the cross-entropy grid of
#: ``benchmarks/output_range.py`` 24/24 certified at 1e-6 against 14/24, in 0.96x the time;
#: logistic / hinge / Huber (``pilanci_ergen.py``'s losses grid) 12/12 either way, same time;
#: the squared loss, k in {2, 3} (its multi grid, before the k > 1 refinement), 15/18 either
#: way in 1.06x the time, so not used there. Where Clarabel does not reach them, the default solve.
MASTER_CLARABEL = {"tol_gap_abs": 1e-11, "tol_gap_rel": 1e-11, "tol_feas": 1e-11,
                   "tol_ktratio": 1e-9, "max_iter": 400}


def master_cvxpy(problem, U, solver, *, return_dual: bool = False):
    """Group lasso over the columns of ``U`` (d' x m) for the problem's loss: returns
    ``(V (m, k), c (k,), info)``, and ``Lambda`` (N x k, the multiplier of
    ``Z = A V + bias 1 c^T``, so that ``Lambda = -grad C(Z)`` for a smooth loss) when
    ``return_dual``."""
    N, k, lam, beta = problem.N, problem.k, problem.lam, problem.bias
    A = problem.activation(problem.H0 @ U)
    Vv = cp.Variable((U.shape[1], k))
    Zv = cp.Variable((N, k))
    out = A @ Vv
    obj = 2 * lam * cp.sum(cp.norm(Vv, 2, axis=1))
    c = None
    if beta > 0:
        c = cp.Variable(k)
        out = out + beta * np.ones((N, 1)) @ cp.reshape(c, (1, k), order="C")
        obj = obj + lam * cp.sum_squares(c)
    link = Zv == out
    prob = cp.Problem(cp.Minimize(problem.loss.expression(Zv, problem.Y) + obj), [link])
    info = None
    if problem.loss.name != "mse" and _check_solver(solver)[0] == "CLARABEL":
        try:
            info = run(prob, "CLARABEL", {"CLARABEL": MASTER_CLARABEL}, warn=False,
                       fallback=False)
        except SolverFailedError:
            info = None
        if info is not None and info.status != cp.OPTIMAL:
            info = None
    if info is None:
        info = run(prob, solver, warn=False)
    cv = np.asarray(c.value, dtype=float) if c is not None else np.zeros(k)
    V = np.asarray(Vv.value, dtype=float)
    if not return_dual:
        return V, cv, info
    dual = link.dual_value
    Lam = None if dual is None else np.asarray(dual, dtype=float).reshape(N, k)
    return V, cv, info, Lam


class _Lasso:
    """Data of the numpy master: Gram matrix, correlations, objective and exact group
    soft-threshold passes (block-coordinate descent)."""

    def __init__(self, problem, U, V0, c0):
        self.N, self.k, self.lam, self.beta = problem.N, problem.k, problem.lam, problem.bias
        self.Y = np.asarray(problem.Y, dtype=float)
        self.A = problem.activation(problem.H0 @ U)
        self.G = self.A.T @ self.A
        self.diag = np.diag(self.G).copy()
        self.AtY = self.A.T @ self.Y
        self.s = self.A.sum(axis=0)
        self.ysum = self.Y.sum(axis=0)
        m = self.A.shape[1]
        self.V = np.zeros((m, self.k)) if V0 is None else np.array(V0, dtype=float)
        self.live = self.diag > 1e-300
        self.V[~self.live] = 0.0
        self.c = (np.zeros(self.k) if (c0 is None or self.beta == 0)
                  else np.array(c0, dtype=float))

    def objective(self, V, c):
        R = self.A @ V + self.beta * c[None, :] - self.Y
        return (float(np.sum(R * R)) / self.N
                + 2 * self.lam * float(np.sum(np.linalg.norm(V, axis=1)))
                + self.lam * float(c @ c))

    def bcd(self, idx, Q):
        """One pass of exact group soft-thresholds over ``idx`` (``Q = G V`` kept current)."""
        V, c, beta, thr = self.V, self.c, self.beta, self.N * self.lam
        for j in idx:
            vj = V[j]
            g = self.AtY[j] - Q[j] + self.diag[j] * vj
            if beta > 0:
                g = g - (beta * self.s[j]) * c
            ng = np.sqrt(g @ g)
            if ng <= thr:
                if not vj.any():
                    continue
                new = np.zeros(self.k)
            else:
                new = ((1.0 - thr / ng) / self.diag[j]) * g
            Q += np.outer(self.G[:, j], new - vj)
            V[j] = new
        if beta > 0:
            c[:] = beta * (self.ysum - V.T @ self.s) / (self.N * (beta * beta + self.lam))

    def newton_system(self, S):
        """Gradient and Hessian of the objective in ``(V_S, c)`` (smooth on the support)."""
        N, k, lam, beta = self.N, self.k, self.lam, self.beta
        V, c = self.V, self.c
        GS, sS, vS = self.G[np.ix_(S, S)], self.s[S], V[S]
        nv = np.linalg.norm(vS, axis=1)
        W = vS / nv[:, None]
        R_At = GS @ vS + beta * np.outer(sS, c) - self.AtY[S]  # A_S^T (Z - Y)
        grad = (2 / N * R_At + 2 * lam * W).ravel()
        H = np.kron(2 / N * GS, np.eye(k))
        for i in range(len(S)):
            H[i*k:(i+1)*k, i*k:(i+1)*k] += 2 * lam * (np.eye(k) - np.outer(W[i], W[i])) / nv[i]
        if beta > 0:
            rsum = V.T @ self.s + beta * N * c - self.ysum  # (Z - Y)^T 1
            gc = 2 / N * beta * rsum + 2 * lam * c
            Hvc = np.kron(2 / N * beta * sS[:, None], np.eye(k))  # (nS k) x k
            Hcc = (2 * beta * beta + 2 * lam) * np.eye(k)
            H = np.block([[H, Hvc], [Hvc.T, Hcc]])
            grad = np.concatenate([grad, gc])
        return grad, H

    def line_search(self, S, dV, dc, f0):
        """Backtracking on the objective; for k = 1 the step stops at the first atom that
        changes sign (snapped to zero). Returns ``(V, c, t, f)`` or None."""
        k, vS = self.k, self.V[S]
        t = 1.0
        if k == 1:
            cross = (vS[:, 0] * (vS[:, 0] + dV[:, 0]) < 0)
            if cross.any():
                t = float(min(1.0, (-vS[cross, 0] / dV[cross, 0]).min()))
        for _ in range(40):
            Vn = self.V.copy()
            Vn[S] = vS + t * dV
            if k == 1 and t < 1.0:
                Vn[S[np.abs(Vn[S, 0]) <= 1e-15 * np.abs(vS[:, 0]).max()], 0] = 0.0
                jmin = int(np.argmin(np.abs(Vn[S, 0]) / np.maximum(np.abs(vS[:, 0]), 1e-300)))
                Vn[S[jmin], 0] = 0.0  # snap the crossing atom to zero
            cn = self.c + t * dc
            fn = self.objective(Vn, cn)
            if fn <= f0:
                return Vn, cn, t, fn
            t *= 0.5
        return None

    def newton(self, S, max_steps=60):
        """Damped Newton on the support ``S`` (atoms may leave it)."""
        k = self.k
        f0 = self.objective(self.V, self.c)
        for _ in range(max_steps):
            S = S[np.any(self.V[S] != 0, axis=1)]
            if len(S) == 0:
                return
            grad, H = self.newton_system(S)
            reg = 1e-14 * max(np.abs(np.diag(H)).max(), 1e-300)
            try:
                step = -np.linalg.solve(H + reg * np.eye(len(grad)), grad)
            except np.linalg.LinAlgError:
                return
            dV = step[:len(S) * k].reshape(len(S), k)
            dc = step[len(S) * k:] if self.beta > 0 else np.zeros(k)
            found = self.line_search(S, dV, dc, f0)
            if found is None:
                return
            self.V, self.c, t, fn = found
            if k > 1:  # let atoms leave the support exactly (group soft-threshold)
                self.bcd(S, self.G @ self.V)
                fn = self.objective(self.V, self.c)
            dec, f0 = f0 - fn, fn
            if dec <= 1e-16 * max(f0, 1e-300) and t == 1.0:
                return

    def certificate(self):
        """``(P, gap, kkt)``: primal value, duality gap over the dictionary (``Lambda`` scaled
        into ``max_j ||A_j^T Lambda|| <= 2 lam``) and the relative KKT residual."""
        N, lam, beta, V, c = self.N, self.lam, self.beta, self.V, self.c
        R = self.A @ V + beta * c[None, :] - self.Y
        Lam = -2.0 * R / N
        AtLam = self.A.T @ Lam
        vn = np.linalg.norm(V, axis=1)
        P = float(np.sum(R * R)) / N + 2 * lam * float(vn.sum()) + lam * float(c @ c)
        rn = np.linalg.norm(AtLam, axis=1)
        rho = float(rn.max(initial=0.0))
        lin = float(np.sum(Lam * self.Y))
        quad = N / 4 * float(np.sum(Lam**2))
        if beta > 0:
            quad += beta**2 * float(np.sum(Lam.sum(axis=0) ** 2)) / (4 * lam)
        t_max = 2 * lam / rho if rho > 0 else np.inf
        t = lin / (2 * quad) if quad > 0 else (t_max if lin > 0 else 0.0)
        t = float(np.clip(t, 0.0, t_max))
        D = t * lin - t * t * quad
        on = vn > 0
        kkt = np.zeros(len(vn))
        kkt[on] = np.linalg.norm(AtLam[on] - 2 * lam * V[on] / vn[on, None], axis=1)
        kkt[~on] = np.maximum(rn[~on] - 2 * lam, 0.0)
        res = float(kkt.max(initial=0.0)) / (2 * lam)
        if beta > 0:
            res = max(res, float(np.linalg.norm(beta * Lam.sum(axis=0) - 2 * lam * c)) / (2 * lam))
        return P, P - D, res


def master_numpy(problem, U, V0=None, c0=None, *, gap_tol=1e-12, kkt_tol=1e-9,
                 max_rounds=10):
    """The restricted master in numpy (squared loss): returns
    ``(V (m, k), c (k,), info, converged)``.

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
    to the cvxpy master). Warm start: ``V0`` rows aligned with the columns of ``U``. One
    output: the exact active-set solve :func:`_active_set_k1` (warm-started on the support of
    ``V0``) is tried first, under the same convergence test.
    """
    ls = _Lasso(problem, U, V0, c0)
    if ls.k == 1 and _active_set_k1(ls):
        P, gap, res = ls.certificate()
        if not (gap <= gap_tol * max(P, 1e-300) and res <= kkt_tol):
            # an ill-conditioned support solve (nearly collinear atoms): the damped Newton
            # polish on that support first, the block descent below only if it still fails
            ls.newton(np.flatnonzero(np.any(ls.V != 0, axis=1)))
            P, gap, res = ls.certificate()
        if gap <= gap_tol * max(P, 1e-300) and res <= kkt_tol:
            return ls.V, ls.c, SolveInfo("optimal", "numpy", P, [("numpy", "optimal")],
                                         iterations=1), True
        ls = _Lasso(problem, U, V0, c0)
    idx_all = np.flatnonzero(ls.live)
    P = np.inf
    for rounds in range(1, max_rounds + 1):
        Q = ls.G @ ls.V
        for _ in range(3):
            ls.bcd(idx_all, Q)
        S = np.flatnonzero(np.any(ls.V != 0, axis=1))
        ls.newton(S)
        ls.bcd(idx_all, ls.G @ ls.V)  # clean-up pass (exact zeros / new atoms)
        S2 = np.flatnonzero(np.any(ls.V != 0, axis=1))
        if not np.array_equal(S, S2):
            ls.newton(S2)
        P, gap, res = ls.certificate()
        if gap <= gap_tol * max(P, 1e-300) and res <= kkt_tol:
            return ls.V, ls.c, SolveInfo("optimal", "numpy", P, [("numpy", "optimal")],
                                         iterations=rounds), True
    return ls.V, ls.c, SolveInfo("not converged", "numpy", P, [("numpy", "max_rounds")],
                                 iterations=max_rounds), False


def _active_set_k1(ls, max_iter=None):
    """Exact active-set (feature-sign) solve of the one-output squared-loss master, in place
    on ``ls`` (a :class:`_Lasso`). Scaled by ``N / 2`` the master is
    ``1/2 ||A v + beta c 1 - y||^2 + tau ||v||_1 + tau c^2 / 2``, ``tau = N lam``: on a
    support ``S`` with signs ``theta`` its minimiser solves
    ``[[G_SS, beta s_S], [beta s_S^T, beta^2 N + tau]] [v_S; c] = [A_S^T y - tau theta;
    beta 1^T y]``; a step to it stops at the best point where an atom changes sign (that atom
    leaves), and when the signs hold the most violating atom (``|g_j| > tau``,
    ``g = A^T (A v + beta c 1 - y)``) enters (dependent columns: the least-norm solution of
    the system). Returns False when the iteration limit is hit (the caller then uses the
    block-descent master)."""
    G, AtY, s, tau, beta, N = ls.G, ls.AtY[:, 0], ls.s, ls.N * ls.lam, ls.beta, ls.N
    yty = float(ls.Y[:, 0] @ ls.Y[:, 0])
    ysum = float(ls.ysum[0])
    m = len(AtY)
    v = ls.V[:, 0].copy()
    c = float(ls.c[0]) if beta > 0 else 0.0
    live = ls.live
    max_iter = 2 * m + 20 if max_iter is None else max_iter
    blow_up = 1.001  # a step may raise the objective (a wrong sign at t = 1), not blow it up
    nb = beta > 0

    def fval(S, vS, cc, signs=None):
        """The objective (with ``signs``: the signed model ``tau signs^T v`` for the
        l1 term)."""
        q = float(vS @ (G[np.ix_(S, S)] @ vS)) if len(S) else 0.0
        lin = float(AtY[S] @ vS)
        if nb:
            q += 2 * beta * cc * float(s[S] @ vS) + (beta * beta * N + tau) * cc * cc
            lin += beta * ysum * cc
        l1 = float(np.abs(vS).sum()) if signs is None else float(signs @ vS)
        return 0.5 * q - lin + 0.5 * yty + tau * l1

    S = np.flatnonzero(v != 0)
    theta = np.sign(v[S])
    for _ in range(max_iter):
        # optimality of the nonzero atoms on S: solve the signed system
        n = len(S)
        M = np.empty((n + nb, n + nb))
        M[:n, :n] = G[np.ix_(S, S)]
        rhs = np.empty(n + nb)
        rhs[:n] = AtY[S] - tau * theta
        if nb:
            M[:n, n] = M[n, :n] = beta * s[S]
            M[n, n] = beta * beta * N + tau
            rhs[n] = beta * ysum
        vS = v[S]
        f_cur = fval(S, vS, c)
        try:
            x = np.linalg.solve(M, rhs) if n + nb else np.zeros(0)
        except np.linalg.LinAlgError:
            x = None
        if x is None or not np.all(np.isfinite(x)) or fval(
                S, x[:n], float(x[n]) if nb else 0.0, theta) > f_cur + 1e-9 * abs(f_cur):
            # the signed model rose: (nearly) dependent columns, take the least-norm solution
            x = np.linalg.lstsq(M, rhs, rcond=1e-12)[0]
        if not np.all(np.isfinite(x)):
            return False
        vn, cn = x[:n], (float(x[n]) if nb else 0.0)
        flip = np.flatnonzero(np.sign(vn) != theta)
        if len(flip):  # the segment leaves the orthant: best of the crossing points and the end
            with np.errstate(divide="ignore", invalid="ignore"):
                tf = -vS[flip] / (vn[flip] - vS[flip])
            inside = (tf > 0) & (tf < 1)
            best_t, best_f, best_j = 1.0, fval(S, vn, cn), -1
            for t, jf in zip(tf[inside], flip[inside]):
                ft = fval(S, vS + t * (vn - vS), c + t * (cn - c))
                if ft < best_f:
                    best_t, best_f, best_j = float(t), ft, int(jf)
            if best_f > blow_up * abs(f_cur) + 1e-12:
                return False  # a blow-up: ill-conditioned (the caller falls back)
            vnew = vS + best_t * (vn - vS)
            if best_j >= 0:  # the crossing atom is exactly zero there
                vnew[best_j] = 0.0
            v[S] = vnew
            c = c + best_t * (cn - c)
            keep = v[S] != 0
            S, theta = S[keep], np.sign(v[S[keep]])
            continue
        v[S], c = vn, cn
        g = G[:, S] @ v[S] - AtY + (beta * c) * s
        g[S] = 0.0
        g[~live] = 0.0
        j = int(np.argmax(np.abs(g)))
        if abs(g[j]) <= tau * (1 + 1e-13):
            ls.V[:, 0] = v
            if nb:
                ls.c[0] = c
            return True
        S = np.append(S, j)
        theta = np.append(theta, -np.sign(g[j]))
    return False
