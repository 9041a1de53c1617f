"""Moves that leave a basin the layer programs cannot leave, and the final clean-up.

* :func:`escape`: insert an improving neuron found by :func:`conic_dnn.certify` (a layer whose
  dual-cone test fails), then polish.
* :func:`delete_mode`: drop the weakest direction through *all* layers at once, then polish.
  A single layer program cannot drop a mode that the next layer still uses (it fixes
  ``K_{l+1}``), so a mode sitting in the wrong basin of ``(t - s)^2/N + lam L t^(2/L)`` (the
  identity activation; docs/MATH.md) stays there under the sweeps; deleting it in every layer
  and re-fitting reaches the other basin.
* :func:`drop_dead`: remove neurons that contribute nothing (zero activation on the data or
  zero outgoing weights); the loss can only fall.

Every move returns a candidate with its loss, to be kept only if it is lower.
"""

from __future__ import annotations

import numpy as np

from ..core.forward import insert_neuron
from ..core.network import Network
from ..training.refine import polish as polish_net

__all__ = ["escape", "delete_mode", "drop_dead"]

#: Singular values below this fraction of a layer's largest count as zero (numerical rank).
MODE_RTOL = 1e-8


def _insert(problem, net: Network, layer: int, w_in, w_out, t: float) -> Network:
    """``net`` with one more neuron in hidden layer ``layer``: incoming row ``sqrt(t) w_in``,
    outgoing column ``sqrt(t) w_out`` (inserted before the bias column of ``W_{layer+1}``)."""
    Ws = insert_neuron(net.weights, layer, w_in, w_out, np.sqrt(t), problem.bias)
    return Network(tuple(Ws), problem.activation, problem.bias)


def _first_improving_size(problem, net, lc, obj):
    """The largest step ``t = 2^-j`` along the layer's improving neuron that lowers the loss."""
    refit = lc.multiplier == "covariance"  # verified with Z_{l+1} kept (re-fitted W_{l+1})
    for t in 2.0 ** -np.arange(0, 31):
        if refit:
            try:
                cand = _insert(problem, net, lc.layer, lc.incoming,
                               np.zeros_like(lc.outgoing), t).min_norm(problem)
            except ValueError:  # outside the numerical range: try a smaller step
                continue
        else:
            cand = _insert(problem, net, lc.layer, lc.incoming, lc.outgoing, t)
        val = cand.loss(problem)
        if val < obj - 1e-12 * abs(obj):
            return cand, val
    return None


def escape(problem, net: Network, obj: float, tol: float, cert=None):
    """One escape step from a point where every layer program is optimal but the parameter
    loss is not stationary (with a rank-deficient ``G_l`` the range condition
    ``range(K_{l+1}) in range(G_l)`` couples neighbouring blocks, so block-coordinate descent
    can stall there). :func:`conic_dnn.certify` finds an improving neuron; it is inserted with
    the largest improving size of a geometric range, then the network is polished.

    ``cert``: a :class:`~conic_dnn.certificates.certificate.Certificate` of ``net`` already
    computed (its verified improving neurons are used; no new search).

    Returns ``(network, objective)`` or None if no layer has an improving neuron.
    """
    if cert is None:
        from ..certificates.certificate import certify

        # search only: an escape needs verified improving neurons, not bounds; the exhaustive
        # enumeration finds them exactly for N <= 8 (random starts only beyond)
        cert = certify(problem, net, tol=tol, bounds=False,
                       n_search=0 if problem.N <= 8 else 20)  # certify's max_faces = 3^8
    best = None
    for lc in cert.layers:
        if lc.certified or lc.incoming is None or lc.outgoing is None:
            continue
        step = _first_improving_size(problem, cert.network, lc, obj)
        if step is not None and (best is None or step[1] < best[1]):
            best = step
    if best is None:
        return None
    cand = polish_net(problem, best[0]).min_norm(problem)
    val = cand.loss(problem)
    return (cand, val) if val < best[1] else best


def _truncate(W: np.ndarray, rank: int, n_in: int) -> np.ndarray:
    """``W`` with its input block (first ``n_in`` columns; a bias column is kept) cut to the
    given rank by its SVD."""
    U, s, Vt = np.linalg.svd(W[:, :n_in], full_matrices=False)
    out = np.array(W, dtype=float)
    out[:, :n_in] = (U[:, :rank] * s[:rank]) @ Vt[:rank]
    return out


def delete_mode(problem, net: Network, obj: float, max_deletions: int = 3):
    """Joint mode deletion: every weight matrix cut to one rank below the network's smallest
    layer rank (the weakest direction dropped through all layers), then polished; repeated
    while it improves, at most ``max_deletions`` times.

    Returns ``(network, objective)`` of the best improvement, or None.
    """
    best = None
    cur = net
    for _ in range(max_deletions):
        Ws = cur.weights
        # W_1 acts on H0 (bias column included); later layers keep their bias column
        n_in = [W.shape[1] - (1 if problem.has_bias and i > 0 else 0) for i, W in enumerate(Ws)]
        ranks = []
        for W, n in zip(Ws, n_in):
            s = np.linalg.svd(W[:, :n], compute_uv=False)
            ranks.append(int(np.sum(s > MODE_RTOL * max(s[0], 1e-300))) if s.size else 0)
        r = min(ranks)
        if r <= 0:
            break
        cut = [_truncate(W, r - 1, n) for W, n in zip(Ws, n_in)]
        cand = Network(tuple(cut), problem.activation, problem.bias)
        cand = polish_net(problem, cand)
        try:
            cand = cand.min_norm(problem)
        except ValueError:
            break
        val = cand.loss(problem)
        if not val < (best[1] if best else obj) * (1 - 1e-12):
            break
        best, cur = (cand, val), cand
    return best


#: Hidden neurons whose activation or outgoing weights are below this fraction of their
#: layer's largest are *negligible*: measured on make_moons, N = 6, depth 3, three such
#: neurons (relative sizes 8e-10 .. 1e-6, left by weight decay shrinking them slowly) carried
#: 4e-15 of the loss; dropping them is offered with a rounding-level tolerance.
NEGLIGIBLE_RTOL = 1e-6


def drop_dead(problem, net: Network, rtol: float = 1e-12) -> Network:
    """``net`` without the hidden neurons that carry nothing: zero activation on every sample
    or zero outgoing weights (relative to the layer's largest, ``rtol``; use
    :data:`NEGLIGIBLE_RTOL` for neurons that carry a rounding-level share of the loss). Later
    pre-activations change by at most that much and the weight norm falls; the caller keeps
    the result only if its loss is not higher (up to rounding)."""
    act, beta = problem.activation, problem.bias
    Ws = [np.array(W, dtype=float) for W in net.weights]
    Zs = net.forward(problem.X)
    for l in range(len(Ws) - 1):
        n = Ws[l].shape[0]
        h = np.linalg.norm(act(Zs[l]), axis=0)
        v = np.linalg.norm(Ws[l + 1][:, :n], axis=0)
        live = (h > rtol * max(h.max(initial=0.0), 1e-300)) & \
               (v > rtol * max(v.max(initial=0.0), 1e-300))
        if live.all():
            continue
        Ws[l] = Ws[l][live]
        cols = np.concatenate([np.flatnonzero(live), np.arange(n, Ws[l + 1].shape[1])])
        Ws[l + 1] = Ws[l + 1][:, cols]
        Zs = Network(tuple(Ws), act, beta).forward(problem.X)
    return Network(tuple(Ws), act, beta)
