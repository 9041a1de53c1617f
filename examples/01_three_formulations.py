"""The three equivalent forms of the regularised loss, and the minimum-norm step.

What it teaches
    A depth-3 ReLU network's regularised loss ``C(Z_L) + lam * sum_l ||W_l||_F^2`` can be
    computed from its weights (parameter form), from its pre-activations alone (activation form,
    with the minimum-norm weights ``W_l^T = pinv(H_{l-1}) Z_l``) and from the hidden
    covariances ``(K_l, G_l)`` (covariance form). The last two always agree; they equal the
    parameter form exactly when the weights are already minimum-norm -- e.g. a *narrow* network
    whose layer inputs have full column rank. A *wide* network (widths > N) carries weight
    components that the data never see: replacing its weights by ``min_norm_weights`` keeps
    every activation and lowers the loss down to the activation form.

Run
    python examples/01_three_formulations.py             # full mode
    CONIC_DNN_QUICK=1 python examples/01_three_formulations.py   # quick mode

Saves ``examples/figures/01_three_formulations.png``.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import conic_dnn as cd  # noqa: E402

QUICK = os.environ.get("CONIC_DNN_QUICK") == "1"
# quick mode writes to figures/quick/, never over the full figures
FIGURES = Path(__file__).resolve().parent / ("figures/quick" if QUICK else "figures")


def random_weights(rng, dims):
    """Gaussian weights ``W_l`` of shape ``(dims[l+1], dims[l])``, scaled by ``1/sqrt(fan_in)``."""
    return [rng.normal(size=(dims[i + 1], dims[i])) / np.sqrt(dims[i])
            for i in range(len(dims) - 1)]


def full_rank_inputs(problem, weights):
    """True when every layer input ``H_{l-1}`` (``X``, then ``relu(Z_l)``) has full column rank:
    then ``Z_l = H_{l-1} W_l^T`` determines ``W_l`` and the weights are already min-norm."""
    Zs = cd.activations_from_weights(problem, weights)
    Hs = [problem.X] + [problem.activation(Z) for Z in Zs[:-1]]
    return all(np.linalg.matrix_rank(H) == H.shape[1] for H in Hs)


def four_losses(problem, weights):
    """Parameter, activation and covariance losses, and the parameter loss after min-norm."""
    Zs = cd.activations_from_weights(problem, weights)
    covs = cd.covariances_from_activations(problem, Zs)
    W_min = cd.min_norm_weights(problem, Zs)
    same = max(float(np.max(np.abs(a - b)))
               for a, b in zip(Zs, cd.activations_from_weights(problem, W_min)))
    return {
        "parameters": cd.loss_parameters(problem, weights),
        "activations": cd.loss_activations(problem, Zs),
        "covariances": cd.loss_covariances(problem, covs, Zs[-1]),
        "min-norm weights": cd.loss_parameters(problem, W_min),
    }, same


def main():
    rng = np.random.default_rng(0)
    N, d, k = (6, 3, 1) if QUICK else (10, 3, 2)
    X, Y = rng.normal(size=(N, d)), rng.normal(size=(N, k))
    problem = cd.Problem(X, Y, depth=3, lam=0.05, activation="relu")
    print(problem)
    narrow = random_weights(rng, [d, 3, 3, k])
    while not full_rank_inputs(problem, narrow):  # a ReLU neuron dead on every point: redraw
        narrow = random_weights(rng, [d, 3, 3, k])
    nets = {
        "narrow (widths 3, 3)": narrow,
        f"wide (widths {2 * N}, {2 * N})": random_weights(rng, [d, 2 * N, 2 * N, k]),
    }
    results = {}
    for name, weights in nets.items():
        losses, same = four_losses(problem, weights)
        results[name] = losses
        print(f"\n{name} network")
        for form, value in losses.items():
            print(f"  loss via {form:<17}: {value:.12f}")
        print(f"  activations unchanged by the min-norm step: max |dZ| = {same:.1e}")
        np.testing.assert_allclose(losses["activations"], losses["covariances"], rtol=1e-9)
        np.testing.assert_allclose(losses["activations"], losses["min-norm weights"], rtol=1e-9)
        assert losses["min-norm weights"] <= losses["parameters"] * (1 + 1e-12)
    print("\nThe activation and covariance forms always agree with the min-norm network.")
    print("The narrow network's weights are already min-norm (all four equal); the wide one")
    print("loses weight the data never see: parameter loss "
          f"{results[list(nets)[1]]['parameters']:.4f} -> "
          f"{results[list(nets)[1]]['min-norm weights']:.4f} with identical activations.")

    FIGURES.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    for ax, (name, losses) in zip(axes, results.items()):
        bars = ax.bar(range(4), list(losses.values()), color=colors)
        ax.set_xticks(range(4), [f.replace(" ", "\n") for f in losses], fontsize=9)
        ax.bar_label(bars, fmt="%.4f", fontsize=8)
        ax.set_title(f"{name} network")
        ax.set_ylabel("regularised loss")
    fig.suptitle("One network, three formulations of its loss (depth-3 ReLU)")
    path = FIGURES / "01_three_formulations.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
