"""Attraction and repulsion forces in the first hidden layer (the paper's Figure 1, on moons).

What it teaches
    In the activation form of the loss, the hidden representation ``Z_1`` (one row per data
    point) feels two forces: *attraction* ``-2 lam pinv(G_0) Z_1`` (from ``||W_1||^2``, pulling
    the points towards the geometry of the inputs) and *repulsion*
    ``+2 lam [pinv(G_1) Z_2 Z_2^T pinv(G_1) s(Z_1)] * s'(Z_1)`` (from ``||W_2||^2``, pushing
    apart points whose outputs differ). ``conic_dnn.attraction_repulsion`` returns the two
    *gradients*; the forces are their negatives. Only their part in ``range(H_0)`` matters:
    each neuron's pre-activation ``z = H_0 w`` lies there, so the forces are projected on it.
    ``G_1`` of a trained ReLU layer is rank deficient (few distinct neurons), where ``pinv``
    is not differentiable; as the paper does for its plots, the inverses are regularised,
    ``(G + eps I)^-1``.

    The network: depth 2, ReLU with bias, trained by multi-start L-BFGS on ``make_moons``
    (labels +-1, MSE). The points are drawn in the 2-D PCA of their first-layer
    representation, with the two (projected) forces as arrows.

Run
    python examples/03_attraction_repulsion.py
    CONIC_DNN_QUICK=1 python examples/03_attraction_repulsion.py

Saves ``examples/figures/03_attraction_repulsion.png``.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import make_moons  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import conic_dnn as cd  # noqa: E402

QUICK = os.environ.get("CONIC_DNN_QUICK") == "1"
# quick mode writes to figures/quick/, never over the full figures
FIGURES = Path(__file__).resolve().parent / ("figures/quick" if QUICK else "figures")


def main():
    N = 12 if QUICK else 20
    X, y = make_moons(n_samples=N, noise=0.1, random_state=0)
    problem = cd.Problem(X, 2.0 * y - 1.0, depth=2, lam=0.01, activation="relu", bias=1.0)
    print(problem)
    with threadpool_limits(limits=1):
        tr = cd.train_lbfgs(problem, widths=20, n_starts=2 if QUICK else 10, seed=0,
                            max_iter=1000 if QUICK else 5000)
    print(tr)
    print(f"L-BFGS stopped with: {tr.message}")
    Zs = cd.activations_from_weights(problem, tr.network)
    H1 = problem.with_input(problem.activation(Zs[0]))
    rank_G1 = np.linalg.matrix_rank(H1 @ H1.T)
    # G_1 = H_1 H_1^T is rank deficient at a trained ReLU layer (few distinct neurons), where
    # pinv(G_1) is not differentiable; as in the paper, regularise the inverses (G + eps I)^-1
    eps = 1e-3 * float(np.trace(problem.G0)) / N
    grads = cd.attraction_repulsion(problem, Zs, layer=1, eps=eps)
    attraction, repulsion = -grads.attraction, -grads.repulsion  # forces = minus gradients

    # the first layer moves only inside range(H_0): project the forces on it
    U, s, _ = np.linalg.svd(problem.H0, full_matrices=False)
    U = U[:, s > 1e-10 * s[0]]
    P = U @ U.T
    att_p, rep_p = P @ attraction, P @ repulsion
    na, nr = np.linalg.norm(att_p), np.linalg.norm(rep_p)
    cos = float(np.sum(att_p * rep_p)) / (na * nr)
    print(f"\nrank G_0 = {np.linalg.matrix_rank(problem.G0)}, rank G_1 = {rank_G1} (N = {N}); "
          f"eps = {eps:.2e}")
    print(f"|attraction| = {na:.3e}, |repulsion| = {nr:.3e}  (projected on range(H_0))")
    print(f"|repulsion| orthogonal to range(H_0) = {np.linalg.norm(repulsion - rep_p):.3e}"
          "  (a direction the first layer cannot use)")
    print(f"cosine(attraction, repulsion) = {cos:+.3f}  (-1: exactly opposed)")
    print("Attraction pulls each point towards the input geometry; repulsion pushes the two"
          "\nclasses apart. With a rank-deficient G_1 and eps > 0 they need not cancel exactly.")

    # PCA of the points' first-layer representations (rows of Z_1)
    Z1 = Zs[0]
    mean = Z1.mean(axis=0)
    _, _, Vt = np.linalg.svd(Z1 - mean, full_matrices=False)
    comps = Vt[:2].T
    pts = (Z1 - mean) @ comps
    A2, R2 = att_p @ comps, rep_p @ comps
    longest = max(np.linalg.norm(A2, axis=1).max(), np.linalg.norm(R2, axis=1).max(), 1e-300)
    scale = 0.15 * np.ptp(pts, axis=0).max() / longest  # the longest arrow: 15% of the plot

    FIGURES.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), constrained_layout=True)
    classes = ((0, "tab:blue", "class -1"), (1, "tab:red", "class +1"))
    ax = axes[0]
    for c, color, name in classes:
        ax.scatter(X[y == c, 0], X[y == c, 1], color=color, edgecolor="k", label=name)
    ax.set_title(f"make_moons, N = {N}: the inputs")
    ax.set_xlabel("x_1")
    ax.set_ylabel("x_2")
    ax.set_aspect("equal")
    ax.legend(loc="best")
    ax = axes[1]
    for c, color, name in classes:
        ax.scatter(pts[y == c, 0], pts[y == c, 1], color=color, edgecolor="k", zorder=3,
                   label=name)
    kw = dict(angles="xy", scale_units="xy", scale=1.0 / scale, width=0.004, zorder=2)
    ax.quiver(pts[:, 0], pts[:, 1], A2[:, 0], A2[:, 1], color="tab:green", label="attraction",
              **kw)
    ax.quiver(pts[:, 0], pts[:, 1], R2[:, 0], R2[:, 1], color="tab:purple", label="repulsion",
              **kw)
    tips = np.vstack([pts, pts + scale * A2, pts + scale * R2])
    pad = 0.05 * np.ptp(tips, axis=0)
    ax.set_xlim(tips[:, 0].min() - pad[0], tips[:, 0].max() + pad[0])
    ax.set_ylim(tips[:, 1].min() - pad[1], tips[:, 1].max() + pad[1])
    claim = ("nearly opposed" if cos < -0.9 else "partly opposed" if cos < 0
             else "not opposed")
    ax.set_title(f"Trained layer 1: attraction and repulsion are {claim}\n"
                 f"cos(attraction, repulsion) = {cos:+.2f}, |att| = {na:.2g}, |rep| = {nr:.2g}",
                 fontsize=10)
    ax.set_xlabel("principal component 1 of Z_1 (first-layer pre-activations)")
    ax.set_ylabel("principal component 2 of Z_1")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
              title="forces on each point\n(projected on range(H_0))", title_fontsize=8)
    path = FIGURES / "03_attraction_repulsion.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
