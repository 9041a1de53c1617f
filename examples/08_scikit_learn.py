"""A conic_dnn network inside scikit-learn: Pipeline + GridSearchCV over lam on make_moons.

What it teaches
    ``conic_dnn.sklearn.ConicNetClassifier`` is an ordinary scikit-learn estimator: labels
    0/1 (or strings) are encoded as +-1 targets, ``fit`` solves the L2-regularised two-layer
    ReLU problem through its covariance cone (column generation) and keeps the result
    (``network_``, ``objective_``, ``lower_bound_``, ``certified_``). Cross-validation picks
    ``lam``; the printed table shows, for each ``lam``, the mean CV accuracy and the width of
    the network the refit on all training data would have.

Run
    python examples/08_scikit_learn.py
    CONIC_DNN_QUICK=1 python examples/08_scikit_learn.py

Saves ``examples/figures/08_scikit_learn.png``.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import make_moons  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from conic_dnn.sklearn import ConicNetClassifier  # noqa: E402

QUICK = os.environ.get("CONIC_DNN_QUICK") == "1"
# quick mode writes to figures/quick/, never over the full figures
FIGURES = Path(__file__).resolve().parent / ("figures/quick" if QUICK else "figures")


def main():
    n = 40 if QUICK else 80
    X, y = make_moons(n_samples=n, noise=0.15, random_state=0)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    lams = [1e-2, 1e-1] if QUICK else [3e-3, 1e-2, 3e-2, 1e-1]
    pipe = make_pipeline(StandardScaler(), ConicNetClassifier(bias=1.0))
    search = GridSearchCV(pipe, {"conicnetclassifier__lam": lams}, cv=3)
    with threadpool_limits(limits=1):
        search.fit(X_train, y_train)
    best = search.best_estimator_[-1]
    print(f"make_moons, {len(X_train)} training / {len(X_test)} test points; "
          f"GridSearchCV (3 folds) over lam = {lams}")
    print(f"{'lam':>8} {'mean CV accuracy':>17}")
    for lam, acc in zip(lams, search.cv_results_["mean_test_score"]):
        print(f"{lam:8.0e} {acc:17.3f}")
    print(f"best lam = {search.best_params_['conicnetclassifier__lam']:g}")
    print(f"test accuracy = {search.score(X_test, y_test):.3f}")
    print(f"refit network: widths {best.network_.widths}, objective {best.objective_:.6f}, "
          f"certified {best.certified_} (lower bound {best.lower_bound_:g})")

    FIGURES.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), constrained_layout=True)
    ax = axes[0]
    ax.semilogx(lams, search.cv_results_["mean_test_score"], "o-")
    ax.set_xlabel("lam (regularisation strength, log scale)")
    ax.set_ylabel("mean 3-fold CV accuracy")
    ax.set_ylim(0, 1.05)
    ax.set_title("GridSearchCV over lam")
    ax = axes[1]
    g0, g1 = np.meshgrid(np.linspace(X[:, 0].min() - 0.5, X[:, 0].max() + 0.5, 150),
                         np.linspace(X[:, 1].min() - 0.5, X[:, 1].max() + 0.5, 150))
    grid = np.column_stack([g0.ravel(), g1.ravel()])
    D = search.best_estimator_.decision_function(grid).reshape(g0.shape)
    ax.contourf(g0, g1, D > 0, levels=[-0.5, 0.5, 1.5], colors=["#c6dbef", "#fcbba1"],
                alpha=0.8)
    ax.contour(g0, g1, D, levels=[0.0], colors="k", linewidths=1)
    for c, color, name in ((0, "tab:blue", "class 0"), (1, "tab:red", "class 1")):
        ax.scatter(X_train[y_train == c, 0], X_train[y_train == c, 1], color=color,
                   edgecolor="k", label=f"{name} (train)")
        ax.scatter(X_test[y_test == c, 0], X_test[y_test == c, 1], color=color, marker="^",
                   edgecolor="k", label=f"{name} (test)")
    ax.set_xlabel("x_1")
    ax.set_ylabel("x_2")
    ax.set_title(f"decision boundary at lam = {search.best_params_['conicnetclassifier__lam']:g}"
                 f" (test accuracy {search.score(X_test, y_test):.2f})")
    ax.legend(loc="lower left", fontsize=8)
    path = FIGURES / "08_scikit_learn.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
