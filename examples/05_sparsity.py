"""How many neurons does an L2-regularised network need? N(N+1), N^2/4, and real data.

What it teaches
    Caratheodory's theorem for cones bounds the width of every hidden layer at a minimum by
    ``N(N+1)`` (the dimension of the space of covariance pairs). The paper's tight example
    (``conic_dnn.tight_example``: ReLU, ``X = I_N``, targets from the complete bipartite graph)
    *needs* ``N^2/4`` neurons: its generator family has exactly that rank, and training a
    network narrower than ``N^2/4`` stays above the closed-form optimum
    ``lam N^2 - lam^2 N (N - 1)``, while from width ``N^2/4`` on training reaches it (the
    plateau). On ordinary data (``make_moons``) a wide trained network prunes to far fewer
    neurons than ``N(N+1)`` without any change of its loss (``conic_dnn.prune``).

Run
    python examples/05_sparsity.py
    CONIC_DNN_QUICK=1 python examples/05_sparsity.py

Saves ``examples/figures/05_sparsity.png``.
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
from conic_dnn.neurons.decompose import generator_rank  # noqa: E402

QUICK = os.environ.get("CONIC_DNN_QUICK") == "1"
# quick mode writes to figures/quick/, never over the full figures
FIGURES = Path(__file__).resolve().parent / ("figures/quick" if QUICK else "figures")


def width_sweep(N: int, lam: float, n_starts: int):
    """Best loss of multi-start L-BFGS at each width, relative to the closed-form optimum."""
    problem, net = cd.tight_example(N, lam)
    bound = cd.tight_example_bound(N, lam)
    widths = list(range(max(1, N * N // 4 - 2), N * N // 4 + 2))  # 2 below, N^2/4, 1 above
    excess = []
    for w in widths:
        tr = cd.train_lbfgs(problem, w, n_starts=n_starts, seed=0, max_iter=3000)
        excess.append(tr.objective / bound - 1)
    return problem, net, bound, widths, excess


def main():
    lam = 1e-3
    sizes = [4] if QUICK else [4, 6]
    n_starts = 8  # N = 4 in quick mode: cheap; fewer starts can miss the optimum at N^2/4
    print("The tight example: every global minimum needs N^2/4 neurons")
    print(f"{'N':>3} {'N^2/4':>6} {'N(N+1)':>7} {'rank':>5} {'pruned (C / LP)':>16} "
          f"{'loss - bound':>13}")
    sweeps = []
    for N in sizes:
        problem, net, bound, widths, excess = width_sweep(N, lam, n_starts)
        Z = net.forward(problem.X)[0]
        rank = generator_rank(Z, problem.activation)
        pc, pl = cd.prune(problem, net), cd.prune(problem, net, "lp")
        print(f"{N:>3} {N * N // 4:>6} {N * (N + 1):>7} {rank:>5} "
              f"{pc.widths[0]:>8} / {pl.widths[0]:<5} {net.loss(problem) - bound:>13.1e}")
        sweeps.append((N, widths, excess))
        for w, e in zip(widths, excess):
            mark = "<- N^2/4" if w == N * N // 4 else ""
            print(f"      width {w:>3}: best training loss / optimum - 1 = {e:9.2e} {mark}")

    # ordinary data: a wide trained network needs far fewer neurons than N(N+1)
    n_moons = 12 if QUICK else 24
    X, y = make_moons(n_samples=n_moons, noise=0.1, random_state=0)
    problem = cd.Problem(X, y.astype(float) * 2 - 1, depth=2, lam=1e-3, bias=1.0)
    trained = cd.train_lbfgs(problem, 100, n_starts=1, seed=0, max_iter=2000).network
    report = cd.sparsity_report(problem, trained)
    print(f"\nmake_moons, N = {n_moons}, a width-100 network trained by L-BFGS, then pruned:")
    print(report)
    lay = report.layers[0]

    FIGURES.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for N, widths, excess in sweeps:
        axes[0].semilogy(widths, np.maximum(excess, 1e-12), "o-", label=f"N = {N}")
        axes[0].axvline(N * N / 4, ls=":", color="grey")
    axes[0].set_xlabel("hidden width")
    axes[0].set_ylabel("best training loss / optimum - 1")
    axes[0].set_title("tight example: the plateau starts at N^2/4 (dotted)")
    axes[0].legend()
    names = ["trained\nwidth", "generator\nrank", "pruned\n(Caratheodory)", "pruned\n(LP)",
             "N^2/4\n(tight ex.)", "N(N+1)\n(bound)"]
    vals = [lay.width, lay.rank, lay.pruned_caratheodory, lay.pruned_lp, lay.tight_bound,
            lay.caratheodory_bound]
    bars = axes[1].bar(names, vals, color=["grey", "k", "C0", "C1", "C2", "C3"])
    axes[1].bar_label(bars, labels=[f"{v:g}" for v in vals], fontsize=8)
    axes[1].set_yscale("log")  # 2 .. 600 neurons: decades
    axes[1].tick_params(axis="x", labelsize=8)
    axes[1].set_ylim(1, 3 * max(vals))
    axes[1].set_ylabel("hidden neurons (log scale)")
    axes[1].set_title(f"make_moons (N = {n_moons}): neurons after pruning\nloss {report.loss:.5f}"
                      f" -> {report.loss_caratheodory:.5f} (never higher: min-norm weights)",
                      fontsize=10)
    fig.tight_layout()
    path = FIGURES / "05_sparsity.png"
    fig.savefig(path, dpi=110)
    print(f"saved {path}")


if __name__ == "__main__":
    with threadpool_limits(limits=1):  # tiny matrices: one BLAS thread is much faster
        main()
