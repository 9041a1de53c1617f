"""A regularisation path of certified global optima, and how sparse they are.

What it teaches
    For a two-layer ReLU network on planar data (``make_moons``: ``rank X = 2``) every cell of
    the data's hyperplane arrangement is a wedge, so the cone program is *exact* at any N: its
    value is the global optimum, and the network read off its solution has exactly that loss.
    ``conic_dnn.solve_path`` solves it for a whole range of ``lam`` with one compiled program
    (``lam`` is a cvxpy Parameter). Along the path, more weight decay means a higher optimal
    loss, a smaller fit term and fewer neurons. The optimum's *value* is unique, its neuron
    set need not be: column generation (a second, independent formulation: a group lasso over
    neuron directions) reaches the same certified value with another network; pruning
    (Caratheodory, ``conic_dnn.prune``) shrinks either without changing its loss, and both stay
    far below ``N^2/4``.

Run
    python examples/07_regularisation_path.py
    CONIC_DNN_QUICK=1 python examples/07_regularisation_path.py

Saves ``examples/figures/07_regularisation_path.png``.
"""

from __future__ import annotations

import os
import time
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
    N = 12 if QUICK else 24
    lams = np.geomspace(1e-3, 3e-1, 5 if QUICK else 12)
    X, y = make_moons(n_samples=N, noise=0.1, random_state=0)
    problem = cd.Problem(X, 2.0 * y - 1.0, depth=2, lam=1.0)   # lam is set along the path

    t0 = time.perf_counter()
    path = cd.solve_path(problem, lams, method="pattern")  # the compiled cone program
    t_path = time.perf_counter() - t0
    t0 = time.perf_counter()
    cg = [cd.solve(problem.replace(lam=lam), method="column_generation") for lam in lams]
    t_cg = time.perf_counter() - t0

    print(f"make_moons, N = {N}, two-layer ReLU, no bias (rank X = 2: the cone program is exact)")
    print(f"solve_path: {len(lams)} values of lam in {t_path:.2f} s (one compiled program; "
          f"compilation {path[0].info['compile_time']:.3f} s, then "
          f"{np.median([r.info['compile_time'] for r in path[1:]]) * 1e3:.1f} ms per lam)")
    print(f"column generation: {t_cg:.2f} s\n")
    print(f"{'lam':>9} {'objective':>11} {'rel. gap':>9} {'cert':>5} {'fit':>9} "
          f"{'width / pruned':>15} {'col.gen. / pruned':>18} {'same value':>11}")
    rows = []
    for lam, res, c in zip(lams, path, cg):
        q = problem.replace(lam=lam)
        pruned, pruned_cg = cd.prune(q, res.network), cd.prune(q, c.network)
        fit = q.loss.value(res.network.predict(X), q.Y)
        same = abs(c.objective - res.objective) / res.objective
        rows.append((lam, res.objective, fit, pruned.widths[0], pruned_cg.widths[0]))
        w_ip = f"{res.network.widths[0]} / {pruned.widths[0]}"
        w_cg = f"{c.network.widths[0]} / {pruned_cg.widths[0]}"
        print(f"{lam:9.2e} {res.objective:11.6f} {res.gap / res.objective:9.1e} "
              f"{'yes' if res.certified else 'no':>5} {fit:9.2e} {w_ip:>15} {w_cg:>18} "
              f"{same:11.1e}")
    assert all(r.certified for r in path), "every point of the path should be certified"

    lam_, obj, fit, w_ip, w_cg = map(np.array, zip(*rows))
    lo, hi = int(min(w_ip.min(), w_cg.min())), int(max(w_ip.max(), w_cg.max()))
    print(f"\nall {len(lams)} points certified; pruned widths along the path: {lo}-{hi} "
          f"neurons (N^2/4 = {N * N // 4}, N(N+1) = {N * (N + 1)})")
    FIGURES.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].semilogx(lam_, obj, "o-", label="optimal regularised loss (certified)")
    axes[0].semilogx(lam_, path.lower_bounds, "x", color="k", ms=8,
                   label="lower bound (coincides: certified)")
    axes[0].semilogx(lam_, fit, "s--", label="fit term C(Z)")
    axes[0].set_xlabel("lam (regularisation strength, log scale)")
    axes[0].set_ylabel("loss")
    axes[0].set_ylim(bottom=0)
    axes[0].set_title(f"make_moons, N = {N}: the regularisation path")
    axes[0].legend()
    axes[1].semilogx(lam_, w_ip, "o-", label="interior point, pruned")
    axes[1].semilogx(lam_, w_cg, "s--", label="column generation, pruned")
    axes[1].set_ylim(0, max(w_ip.max(), w_cg.max()) + 2)  # the widths, not the N^2/4 line
    axes[1].set_xlabel("lam (regularisation strength, log scale)")
    axes[1].set_ylabel("hidden neurons")
    axes[1].set_title(f"neurons at the certified optimum: {min(w_ip.min(), w_cg.min())}-"
                      f"{max(w_ip.max(), w_cg.max())}, far below N^2/4 = {N * N // 4}",
                      fontsize=10)
    axes[1].legend()
    fig.tight_layout()
    path_png = FIGURES / "07_regularisation_path.png"
    fig.savefig(path_png, dpi=110)
    print(f"saved {path_png}")


if __name__ == "__main__":
    with threadpool_limits(limits=1):  # tiny matrices: one BLAS thread is much faster
        main()
