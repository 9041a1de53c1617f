"""The covariance cone of ReLU, drawn exactly for N = 2, and its relaxation gap at N = 5.

What it teaches
    A ReLU neuron ``z`` in R^N contributes the pair ``(z z^T, s(z) s(z)^T)``; a layer of any
    width is a conic combination of such generators, so its covariances ``(K, G)`` range over
    the convex cone ``S_s``. For N = 2 the generators are parametrised by an angle: in the
    section ``tr K = 1`` the coordinates ``(K_12, G_12)`` of the generators trace a curve whose
    convex hull is the section's projection. ``conic_dnn.cone_constraints`` (exact for
    N <= 4) gives the same set: its support function, computed by small SDPs, traces the
    boundary.

    For N >= 5 the pattern representation (one doubly-nonnegative block per sign pattern) is
    only a relaxation, and the ``lifted`` one is looser still. On a depth-2 problem the true
    optimum lies between the pattern lower bound and the best network found (solver or
    multi-start L-BFGS); the lifted bound is lower.

Run
    python examples/04_the_cone.py
    CONIC_DNN_QUICK=1 python examples/04_the_cone.py

Saves ``examples/figures/04_the_cone.png``.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import cvxpy as cp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import conic_dnn as cd  # noqa: E402

QUICK = os.environ.get("CONIC_DNN_QUICK") == "1"
# quick mode writes to figures/quick/, never over the full figures
FIGURES = Path(__file__).resolve().parent / ("figures/quick" if QUICK else "figures")


def generators(n_angles: int):
    """``(K_12, G_12)`` of the ReLU generators ``z = (cos t, sin t)`` (so ``tr K = 1``)."""
    t = np.linspace(0.0, 2 * np.pi, n_angles, endpoint=False)
    z = np.stack([np.cos(t), np.sin(t)], axis=1)
    sz = np.maximum(z, 0.0)
    return t, z[:, 0] * z[:, 1], sz[:, 0] * sz[:, 1]


def support_boundary(n_dirs: int) -> np.ndarray:
    """Boundary points of ``{(K_12, G_12) : (K, G) in S_s, tr K = 1}`` for N = 2, from the
    cvxpy cone: maximise ``<u, (K_12, G_12)>`` for directions ``u`` on the circle."""
    K = cp.Variable((2, 2), symmetric=True)
    G = cp.Variable((2, 2), symmetric=True)
    u = cp.Parameter(2)
    cons = cd.cone_constraints(K, G, "relu") + [cp.trace(K) == 1]
    prob = cp.Problem(cp.Maximize(u[0] * K[0, 1] + u[1] * G[0, 1]), cons)
    pts = []
    for a in np.linspace(0.0, 2 * np.pi, n_dirs, endpoint=False):
        u.value = np.array([np.cos(a), np.sin(a)])
        prob.solve(solver="CLARABEL")
        pts.append((K.value[0, 1], G.value[0, 1]))
    return np.array(pts)


def relaxation_gap(quick: bool):
    """Depth-2 ReLU, N = 5, full-rank data: pattern and lifted bounds, and the best networks."""
    rng = np.random.default_rng(2)
    N = 5
    X, Y = rng.normal(size=(N, N)), rng.normal(size=(N, 2))
    problem = cd.Problem(X, Y, depth=2, lam=0.02, activation="relu")
    pattern = cd.solve(problem, method="pattern")
    lifted = cd.solve(problem, method="lifted")
    lbfgs = cd.train_lbfgs(problem, N * (N + 1), n_starts=3 if quick else 20, seed=0,
                           max_iter=1000 if quick else 3000)
    return problem, pattern, lifted, lbfgs


def main():
    t, k12, g12 = generators(60 if QUICK else 720)
    boundary = support_boundary(12 if QUICK else 72)
    print("N = 2, section tr K = 1: generators z = (cos t, sin t)")
    print(f"  K_12 ranges over [{k12.min():+.3f}, {k12.max():+.3f}], "
          f"G_12 over [{g12.min():+.3f}, {g12.max():+.3f}]")
    print("  G_12 = K_12 when z >= 0 (both neurons active), G_12 = 0 otherwise: the section is")
    print("  the triangle (-1/2, 0), (1/2, 0), (1/2, 1/2); the SDP support points lie on it:")
    outside = np.maximum.reduce([-boundary[:, 1], boundary[:, 1] - np.maximum(boundary[:, 0], 0),
                                 boundary[:, 0] - 0.5])
    print(f"  max violation of the triangle by the cvxpy cone's support points: "
          f"{outside.max():.1e}")

    with threadpool_limits(limits=1):
        problem, pattern, lifted, lbfgs = relaxation_gap(QUICK)
    best = min(pattern.objective, lifted.objective, lbfgs.objective)
    print(f"\nN = 5, depth 2 ({problem}):")
    rows = [("pattern lower bound", pattern.lower_bound),
            ("lifted lower bound", lifted.lower_bound),
            ("pattern: network objective", pattern.objective),
            ("lifted: network objective", lifted.objective),
            (f"best of {lbfgs.n_starts} L-BFGS", lbfgs.objective)]
    for name, value in rows:
        print(f"  {name:<28} {value:.10f}   ({(value - best) / best:+.2e} vs best network)")
    print(f"  the true optimum lies in [{pattern.lower_bound:.10f}, {best:.10f}]")
    if pattern.certified:
        print("  Here the pattern relaxation is tight (its network closes the gap): the optimum is")
        print("  certified even at N = 5. The lifted relaxation is strictly looser.")
    else:
        print("  The pattern relaxation leaves a gap here: a relaxation, not an exact program.")

    FIGURES.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True)
    ax = axes[0]
    tri = np.array([[-0.5, 0.0], [0.5, 0.0], [0.5, 0.5], [-0.5, 0.0]])
    ax.fill(tri[:, 0], tri[:, 1], color="lightgrey", label="section of S_s (convex hull)")
    sc = ax.scatter(k12, g12, c=t, cmap="twilight", s=8, label="generators z = (cos t, sin t)")
    ax.plot(boundary[:, 0], boundary[:, 1], "k+", ms=9, label="support points (cone_constraints)")
    fig.colorbar(sc, ax=ax, label="angle t")
    ax.set_xlabel("K_12")
    ax.set_ylabel("G_12")
    ax.set_title("ReLU cone for N = 2, section tr K = 1")
    ax.legend(loc="upper left", fontsize=8)
    ax = axes[1]
    # distance of every value from the best network found, relative, on a log axis (bars start
    # at the axis floor; nothing is truncated): the bounds' bars are the relaxation gaps
    floor = 1e-12
    names = ["lifted\nbound", "pattern\nbound", "pattern\nnetwork", "lifted\nnetwork",
             f"L-BFGS\nbest of {lbfgs.n_starts}"]
    values = [lifted.lower_bound, pattern.lower_bound, pattern.objective, lifted.objective,
              lbfgs.objective]
    rel = [abs(v - best) / best for v in values]
    colors = ["tab:cyan", "tab:blue", "tab:green", "tab:olive", "tab:orange"]
    bars = ax.bar(names, [max(r, floor) for r in rel], color=colors, bottom=floor)
    ax.bar_label(bars, labels=[f"{'-' if v < best else '+'}{r:.1e}" if r > floor else "best"
                               for v, r in zip(values, rel)], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylim(floor, 10 * max(max(rel), 10 * floor))
    ax.set_ylabel("|value - best network| / best network")
    ax.set_title(f"N = 5, depth 2: relaxation gaps (bounds) and excess (networks)\n"
                 f"relative to the best network found, {best:.6f}", fontsize=10)
    path = FIGURES / "04_the_cone.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
