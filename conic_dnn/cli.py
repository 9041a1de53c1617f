"""The ``conic-dnn`` command line."""

from __future__ import annotations

import argparse
import sys

import numpy as np

__all__ = ["main"]


def _demo(args) -> int:
    import conic_dnn as cd

    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    p = cd.Problem(X, Y, depth=3, lam=0.05, activation="relu")
    W = [rng.normal(size=(8, 3)), rng.normal(size=(5, 8)), rng.normal(size=(2, 5))]
    Zs = cd.activations_from_weights(p, W)
    lp = cd.loss_parameters(p, W)
    la = cd.loss_activations(p, Zs)
    lc = cd.loss_covariances(p, cd.covariances_from_activations(p, Zs), Zs[-1])
    print(f"{p}")
    print(f"  parameter-form loss (random network) : {lp:.10f}")
    print(f"  activation-form loss (min-norm)      : {la:.10f}")
    print(f"  covariance-form loss                 : {lc:.10f}")
    print(f"objective (min-norm network) = {la:.10f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog="conic-dnn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="the main job on built-in data")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return _demo(args)
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
