"""The restricted master for the smooth built-in losses (logistic, Huber, cross-entropy,
squared), any number of outputs, in numpy: a damped Newton method on the support.

``min_{V, c} C(A V + beta 1 c^T) + 2 lam sum_j ||v_j|| + lam ||c||^2`` (``A = s(H0 U)``). On a
support ``S`` (atoms with ``v_j != 0``) the objective is twice differentiable; with the output
bias as one more column ``beta 1`` of ``A`` (penalty ``lam ||c||^2``), the gradient is
``A~^T grad C(Z) + 2 lam [v_j / ||v_j||; c]`` and the Hessian
``sum_i a~_i a~_i^T (x) H_i + 2 lam blockdiag((I - w_j w_j^T) / ||v_j||, I)``, ``H_i`` the
``k x k`` Hessian of the cost in row ``i`` of ``Z`` (:func:`row_hessians`). Atoms leave the
support where a step changes their sign (one output) or their norm collapses; atoms enter when
the KKT test finds ``||A_j^T Lambda|| > 2 lam`` (``Lambda = -grad C(Z)``). Accepted only when
the KKT residual (as :meth:`conic_dnn.two_layer.group_lasso._Lasso.certificate`) is at most
``kkt_tol`` relative to ``2 lam``: then ``Lambda``, hence the Fenchel dual point of column
generation, is accurate to that level (the cvxpy exponential-cone master is accurate to ~1e-7
only, which left logistic gaps of a few 1e-6). The hinge (not smooth) is not handled.
"""

from __future__ import annotations

import numpy as np

from ..core.losses import MSE, CrossEntropy, Huber, Logistic

__all__ = ["smooth", "row_hessians", "polish"]

_SMOOTH = (MSE, Logistic, Huber, CrossEntropy)


def smooth(loss) -> bool:
    """True for the built-in costs :func:`polish` handles (exact types)."""
    return type(loss) in _SMOOTH


def row_hessians(loss, Z: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``(N, k, k)``: the Hessian of ``C`` in each row of ``Z`` (``C = sum_i c(z_i, y_i)``)."""
    N, k = Z.shape
    if isinstance(loss, CrossEntropy):
        Zs = Z - Z.max(axis=1, keepdims=True)
        P = np.exp(Zs)
        P /= P.sum(axis=1, keepdims=True)
        return (np.einsum("il,lm->ilm", P, np.eye(k)) - np.einsum("il,im->ilm", P, P)) / N
    if isinstance(loss, MSE):
        h = np.full((N, k), 2.0 / N)
    elif isinstance(loss, Huber):
        h = np.where(np.abs(Z - Y) <= loss.delta, 2.0 / N, 0.0)
    elif isinstance(loss, Logistic):
        q = 0.5 * (1.0 - np.tanh(0.5 * Y * Z))  # sigma(-y z)
        h = q * (1.0 - q) / N
    else:  # pragma: no cover - guarded by smooth()
        raise TypeError(f"loss: no Hessian for {type(loss).__name__}")
    return np.einsum("il,lm->ilm", h, np.eye(k))


class _Smooth:
    def __init__(self, problem, U):
        self.p, self.loss, self.Y = problem, problem.loss, np.asarray(problem.Y, dtype=float)
        self.N, self.k, self.lam, self.beta = problem.N, problem.k, problem.lam, problem.bias
        A = problem.activation(problem.H0 @ U)
        self.m = A.shape[1]
        self.Ab = np.hstack([A, self.beta * np.ones((self.N, 1))]) if self.beta > 0 else A
        self.live = np.linalg.norm(A, axis=0) > 1e-300

    def objective(self, X):
        m, lam = self.m, self.lam
        val = self.loss.value(self.Ab @ X, self.Y) + 2 * lam * float(
            np.sum(np.linalg.norm(X[:m], axis=1)))
        if self.beta > 0:
            val += lam * float(X[m] @ X[m])
        return val

    def kkt(self, X):
        """``(residual, violators)``: the relative KKT residual and the off-support atoms with
        ``||A_j^T Lambda|| > 2 lam``, worst first."""
        m, lam = self.m, self.lam
        Lam = -self.loss.gradient(self.Ab @ X, self.Y)
        R = self.Ab.T @ Lam  # (m [+1], k)
        nv = np.linalg.norm(X[:m], axis=1)
        on = nv > 0
        res = np.zeros(m)
        res[on] = np.linalg.norm(R[:m][on] - 2 * lam * X[:m][on] / nv[on, None], axis=1)
        rn = np.linalg.norm(R[:m], axis=1)
        off = (~on) & self.live
        res[off] = np.maximum(rn[off] - 2 * lam, 0.0)
        worst = float(res.max(initial=0.0))
        if self.beta > 0:
            worst = max(worst, float(np.linalg.norm(R[m] - 2 * lam * X[m])))
        viol = np.flatnonzero(off & (rn > 2 * lam))
        return worst / (2 * lam), viol[np.argsort(-rn[viol])], R

    def newton(self, X, max_steps=50):
        """Damped Newton on the current support (in place on a copy; returns it)."""
        m, k, lam, nb = self.m, self.k, self.lam, int(self.beta > 0)
        f0 = self.objective(X)
        for _ in range(max_steps):
            S = np.flatnonzero(np.linalg.norm(X[:m], axis=1) > 0)
            idx = np.concatenate([S, [m]]) if nb else S
            if len(idx) == 0:
                return X
            As = self.Ab[:, idx]
            Z = self.Ab @ X
            Gz = self.loss.gradient(Z, self.Y)
            Hr = row_hessians(self.loss, Z, self.Y)
            Xs = X[idx]
            nv = np.linalg.norm(Xs[:len(S)], axis=1)
            Wn = Xs[:len(S)] / nv[:, None]
            grad = As.T @ Gz
            grad[:len(S)] += 2 * lam * Wn
            if nb:
                grad[-1] += 2 * lam * Xs[-1]
            if np.abs(grad).max() <= 1e-13 * lam:  # stationary on the support
                return X
            n = len(idx)
            H = np.einsum("ia,ilq,ib->albq", As, Hr, As).reshape(n * k, n * k)
            for i in range(len(S)):
                blk = slice(i * k, (i + 1) * k)
                H[blk, blk] += 2 * lam * (np.eye(k) - np.outer(Wn[i], Wn[i])) / nv[i]
            if nb:
                H[-k:, -k:] += 2 * lam * np.eye(k)
            reg = 1e-14 * max(np.abs(np.diag(H)).max(), 1e-300)
            try:
                step = -np.linalg.solve(H + reg * np.eye(n * k), grad.ravel()).reshape(n, k)
            except np.linalg.LinAlgError:
                return X
            t, jcross = 1.0, -1
            if k == 1 and len(S):  # stop at the first atom that changes sign, and drop it
                v, dv = Xs[:len(S), 0], step[:len(S), 0]
                cross = np.flatnonzero(v * (v + dv) < 0)
                if len(cross):
                    ts = -v[cross] / dv[cross]
                    jcross, t = int(S[cross[np.argmin(ts)]]), float(min(1.0, ts.min()))
            for _ in range(40):
                Xn = X.copy()
                Xn[idx] = Xs + t * step
                if jcross >= 0:
                    Xn[jcross] = 0.0
                nn = np.linalg.norm(Xn[S], axis=1)
                Xn[S[nn <= 1e-13 * max(nn.max(initial=0.0), 1e-300)]] = 0.0
                fn = self.objective(Xn)
                if fn <= f0 + (4e-16 * abs(f0) if t == 1.0 else 0.0):  # rounding of a full step
                    break
                t, jcross = 0.5 * t, -1
            else:
                return X
            X, f0 = Xn, min(f0, fn)
        return X


def polish(problem, U, V, c, *, kkt_tol: float = 1e-9, max_rounds: int = 8):
    """``(V, c, converged)``: Newton on the support of ``(V, c)`` (a master solution, e.g.
    cvxpy's, or the last round's padded with zero rows for new columns), adding violating atoms
    and dropping vanishing ones, until the KKT residual is at most ``kkt_tol`` relative to
    ``2 lam`` (``converged``) or ``max_rounds`` rounds. Atoms below ``1e-7`` of the largest
    norm are dropped first (an interior-point solution has no exact zeros; the KKT test adds
    them back if they belong)."""
    sm = _Smooth(problem, U)
    m, k = sm.m, sm.k
    X = np.zeros((m + (sm.beta > 0), k))
    X[:m] = np.asarray(V, dtype=float)
    X[:m][~sm.live] = 0.0
    if sm.beta > 0:
        X[m] = np.asarray(c, dtype=float)
    nv = np.linalg.norm(X[:m], axis=1)
    X[:m][nv <= 1e-7 * max(nv.max(initial=0.0), 1e-300)] = 0.0
    for _ in range(max_rounds):
        X = sm.newton(X)
        res, viol, R = sm.kkt(X)
        if res <= kkt_tol:
            return X[:m], (X[m].copy() if sm.beta > 0 else np.zeros(k)), True
        if len(viol):  # enter the worst violators, a small step along their gradient
            j = viol[:max(1, len(viol) // 4)]
            scale = 1e-6 * max(float(np.abs(X).max(initial=0.0)), 1e-12)
            X[j] = scale * R[j] / np.linalg.norm(R[j], axis=1)[:, None]
    return X[:m], (X[m].copy() if sm.beta > 0 else np.zeros(k)), False
