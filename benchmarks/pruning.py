"""Pruning speed: Caratheodory by basis exchange against the LP vertex and a textbook baseline.

For hidden widths n in {400, 3000, 10000} (quick: 300) at N = 20 points, a random two-layer
ReLU network on data of dimension d in {5, 25} (generator rank 225 and 420 = N(N+1)) is pruned
with ``conic_dnn.prune`` (``"caratheodory"``: one pass of basis exchanges; ``"lp"``: dual
simplex vertices on chunks) and, at the smallest width, with a textbook baseline written here
(one SVD null vector per removed neuron). Reported: seconds, kept width, and the relative
change of the activation loss (must be ~1e-15). Target (issue: performance): width 10,000 at
N = 20 in under 5 s.

Run: ``python benchmarks/pruning.py [--quick]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

import conic_dnn as cd  # noqa: E402
from conic_dnn.neurons.decompose import generator_matrix  # noqa: E402

NAME = "pruning"


def textbook(Z, act):
    """Baseline: repeat {SVD null vector of the live generators; step to the first zero}."""
    A = generator_matrix(Z, act)
    x = np.ones(Z.shape[1])
    while True:
        live = np.flatnonzero(x > 0)
        _, s, Vt = np.linalg.svd(A[:, live])
        r = int(np.sum(s > 1e-10 * s[0]))
        if live.size <= r:
            return live.size
        v = Vt[-1]
        if not np.any(v > 1e-14 * np.abs(v).max()):
            v = -v
        pos = np.flatnonzero(v > 1e-14 * np.abs(v).max())
        ratios = x[live[pos]] / v[pos]
        j = int(np.argmin(ratios))
        x[live] = np.maximum(x[live] - ratios[j] * v, 0.0)
        x[live[pos[j]]] = 0.0


def main(argv=None) -> int:
    args = common.parse_args(__doc__.splitlines()[0], argv)
    common.print_header(NAME, args)
    t_start = time.perf_counter()
    N = 20
    widths = [300] if args.quick else [400, 3000, 10000]
    dims = [5] if args.quick else [5, 25]
    rows = []
    for d in dims:
        rng = np.random.default_rng([args.seed, d])
        X, Y = rng.normal(size=(N, d)), rng.normal(size=(N, 1))
        p = cd.Problem(X, Y, 2, 0.01)
        for n in widths:
            W = [rng.normal(size=(n, d)), rng.normal(size=(1, n)) / np.sqrt(n)]
            ref = cd.loss_activations(p, cd.activations_from_weights(p, W))
            row = {"N": N, "d": d, "width": n}
            for method in ("caratheodory", "lp"):
                t0 = time.perf_counter()
                net = cd.prune(p, W, method)
                row[f"{method}_s"] = time.perf_counter() - t0
                row[f"{method}_width"] = net.widths[0]
                row[f"{method}_loss_change"] = abs(net.loss(p) / ref - 1)
            if n == widths[0] and d == dims[0] and not args.quick:
                # the textbook baseline costs one SVD per removed neuron: smallest case only
                Z = cd.activations_from_weights(p, W)[0]
                t0 = time.perf_counter()
                row["textbook_width"] = textbook(Z, cd.relu)
                row["textbook_s"] = time.perf_counter() - t0
                row["speedup_vs_textbook"] = row["textbook_s"] / row["caratheodory_s"]
            row["speedup_vs_lp"] = row["lp_s"] / row["caratheodory_s"]
            rows.append(row)
            common.print_table(f"N = {N}, d = {d}, width {n}", [row], [
                ("caratheodory_s", "carath. s", ".2f"), ("caratheodory_width", "kept"),
                ("caratheodory_loss_change", "loss change", ".1e"), ("lp_s", "LP s", ".2f"),
                ("lp_width", "LP kept"), ("textbook_s", "textbook s", ".2f"),
                ("speedup_vs_lp", "x vs LP", ".1f"),
                ("speedup_vs_textbook", "x vs textbook", ".1f")])
    wall = time.perf_counter() - t_start
    big = [r for r in rows if r["width"] == max(widths)]
    summary = {"max_width_seconds": {str(r["d"]): r["caratheodory_s"] for r in big},
               "target_5s_met": all(r["caratheodory_s"] < 5 for r in big)}
    path = common.write_results(NAME, args, {"N": N, "widths": widths, "dims": dims}, rows,
                                wall, {"summary": summary})
    print(f"\nsummary: {summary}\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
