"""Depth 3: alternating layer programs, their history, and per-layer certificates.

What it teaches
    For depth >= 3 the covariance loss is convex in each hidden layer separately (the others
    fixed), not jointly. ``conic_dnn.solve`` sweeps over the layers, solving one cone program
    per step and keeping a step only if the rebuilt network's own loss does not rise:
    ``result.history`` (one entry per layer step, plus a final L-BFGS polish when it helps)
    never increases. ``conic_dnn.certify`` then tests every hidden layer against the dual
    cone: a certified layer cannot be improved with its neighbours fixed; a violated one comes
    with an explicit improving neuron (``decrease`` < 0). Multi-start L-BFGS is the baseline.

Run
    python examples/06_deep_alternating.py
    CONIC_DNN_QUICK=1 python examples/06_deep_alternating.py

Saves ``examples/figures/06_deep_alternating.png``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import conic_dnn as cd  # noqa: E402

QUICK = os.environ.get("CONIC_DNN_QUICK") == "1"
# quick mode writes to figures/quick/, never over the full figures
FIGURES = Path(__file__).resolve().parent / ("figures/quick" if QUICK else "figures")
# When Clarabel fails on a layer program the library falls back to SCS with up to 100,000
# iterations (tens of seconds); the sweeps check every step by the network's loss, so a
# cheaper SCS is enough here.
SOLVER_OPTIONS = {"SCS": {"max_iters": 3000, "eps_abs": 1e-6, "eps_rel": 1e-6}}


def main():
    rng = np.random.default_rng(2)
    N, d = (5, 2) if QUICK else (6, 2)
    X, Y = rng.normal(size=(N, d)), rng.normal(size=(N, 1))
    problem = cd.Problem(X, Y, depth=3, lam=0.05, activation="relu")
    print(problem)
    with threadpool_limits(limits=1), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = cd.solve(problem, init="linear", max_sweeps=3 if QUICK else 10,
                       solver_options=SOLVER_OPTIONS)  # the sweeps alone, from one start
        lbfgs = cd.train_lbfgs(problem, N * (N + 1), n_starts=3 if QUICK else 10, seed=0,
                               max_iter=1000 if QUICK else 3000)
        cert = cd.certify(problem, res.network, tol=1e-3)
        cert_lbfgs = cd.certify(problem, lbfgs.network, tol=1e-3)
    for w in caught:
        print(f"warning: {w.category.__name__}: {w.message}")
    print()
    print(res)
    n_steps = len(res.history) - 1
    polished = res.info["sweeps"] * (problem.depth - 1) < n_steps
    print(f"history ({n_steps} steps after the initial network"
          f"{', the last one the L-BFGS polish' if polished else ''}):")
    print("  " + " ".join(f"{h:.6f}" for h in res.history))
    print(f"rejected layer steps: {res.info['rejected_steps']}, "
          f"inaccurate layer programs: {res.info['inaccurate_steps']}")
    print(f"\n{lbfgs}")
    print("\nPer-layer certificates of the solve's network (tol 1e-3):")
    print(cert)
    print("\nPer-layer certificates of the best L-BFGS network (tol 1e-3):")
    print(cert_lbfgs)
    print("\nA negative margin is a violated dual-cone inequality: the layer can be improved by"
          "\nadding the reported neuron (first-order rate 'decrease'). No global bound exists"
          "\nfor depth >= 3; certificates are per layer.")

    FIGURES.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7.5, 4.5), constrained_layout=True)
    steps = np.arange(len(res.history))
    ax.plot(steps, res.history, "o-", color="tab:blue", label="conic_dnn.solve history")
    if polished:
        ax.plot(steps[-1], res.history[-1], "s", color="tab:red", ms=9,
                label="after the L-BFGS polish")
    ax.axhline(lbfgs.objective, color="tab:orange", ls="--",
               label=f"best of {lbfgs.n_starts} L-BFGS runs")
    for s in range(1, res.info["sweeps"] + 1):
        ax.axvline(s * (problem.depth - 1) + 0.5, color="grey", lw=0.5)
    ax.set_xlabel("layer step (grey lines: end of a sweep)")
    ax.set_ylabel("regularised loss")
    ax.set_title(f"Depth-3 ReLU, N = {N}: alternating layer programs")
    ax.legend()
    path = FIGURES / "06_deep_alternating.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
