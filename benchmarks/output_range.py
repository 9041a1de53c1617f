"""Cross-entropy, depth 2: pricing on the dual's output range against all k outputs, same process.

A cross-entropy dual point has rows summing to zero, so its output range has dimension
``k - 1`` (:func:`conic_dnn.two_layer.pricing.output_range`): two classes are priced exactly
as one output (the cells, ``"cells"``), three on a circle instead of a sphere. Column
generation (``lam = 0.05``, ReLU, bias 1, X in the plane plus the bias: rank 3; labels by the
angle of x in ``C`` sectors) is run twice per instance: as shipped (``reduced``) and with the
reduction switched off (``full``: the branch and bound over all ``k`` output directions, the
previous behaviour). Rows: certified (relative gap <= 1e-6), relative gap, pricing method,
rounds, time. ``python benchmarks/output_range.py [--quick]`` writes
``results/output_range.json``.
"""

from __future__ import annotations

import time

import numpy as np

import conic_dnn as cd
from conic_dnn.two_layer import pricing
from conic_dnn.two_layer.column_generation import solve_column_generation

try:
    from . import _common as common
except ImportError:  # run as a script
    import _common as common

NAME = "output_range"
LAM = 0.05


def config(quick: bool) -> dict:
    """The grid: classes C, sample sizes N, seeds."""
    if quick:
        return {"classes": [2], "N": [8], "seeds": [0]}
    return {"classes": [2, 3], "N": [12, 20, 32], "seeds": [0, 1, 2, 3]}


def problem(C: int, N: int, seed: int) -> cd.Problem:
    """``N`` Gaussian points in the plane, labelled by their angle's sector of ``2 pi / C``."""
    rng = np.random.default_rng([seed, N, C])
    X = rng.normal(size=(N, 2))
    labels = np.floor(np.arctan2(X[:, 1], X[:, 0]) / (2 * np.pi / C)).astype(int) % C
    return cd.Problem(X, np.eye(C)[labels], 2, LAM, loss="cross_entropy", bias=1.0)


def _solve(p, reduce: bool) -> dict:
    saved = pricing.output_range
    if not reduce:
        pricing.output_range = lambda Lam, H0, activation: (Lam, 0.0)
    try:
        t0 = time.perf_counter()
        res = solve_column_generation(p)
        elapsed = time.perf_counter() - t0
    finally:
        pricing.output_range = saved
    return {"certified": bool(res.certified), "rel_gap": float(res.gap / abs(res.objective)),
            "objective": res.objective, "lower_bound": res.lower_bound,
            "pricing": res.info["pricing"], "rounds": res.info["iterations"], "time": elapsed}


def run(quick: bool = False) -> dict:
    """Rows ``{C, N, seed, reduced: {...}, full: {...}}`` and a summary."""
    cfg = config(quick)
    rows = []
    for C in cfg["classes"]:
        for N in cfg["N"]:
            for seed in cfg["seeds"]:
                p = problem(C, N, seed)
                row = {"C": C, "N": N, "seed": seed, "reduced": _solve(p, True),
                       "full": _solve(p, False)}
                rows.append(row)
                r, f = row["reduced"], row["full"]
                print(f"C={C} N={N} seed={seed}: reduced {r['time']:.2f} s "
                      f"gap {r['rel_gap']:.1e} ({r['pricing']}) | full {f['time']:.2f} s "
                      f"gap {f['rel_gap']:.1e} ({f['pricing']})", flush=True)
    summary = {}
    for key in ("reduced", "full"):
        got = [r[key] for r in rows]
        summary[key] = {"certified": f"{sum(g['certified'] for g in got)}/{len(got)}",
                        "median_rel_gap": float(np.median([g["rel_gap"] for g in got])),
                        "max_rel_gap": float(max(g["rel_gap"] for g in got)),
                        "total_time": float(sum(g["time"] for g in got))}
    for C in cfg["classes"]:
        ratios = [r["full"]["time"] / r["reduced"]["time"] for r in rows if r["C"] == C]
        summary[f"time_ratio_full_over_reduced_C{C}"] = {
            "median": float(np.median(ratios)), "min": float(min(ratios)),
            "max": float(max(ratios))}
    # the two bounds are both valid: neither may be above the other's objective
    summary["bounds_consistent"] = all(
        r["reduced"]["lower_bound"] <= r["full"]["objective"] * (1 + 1e-9)
        and r["full"]["lower_bound"] <= r["reduced"]["objective"] * (1 + 1e-9) for r in rows)
    return {"rows": rows, "summary": summary}


def main(argv: list[str] | None = None) -> int:
    """Run both pricings on the grid and write ``results/output_range.json``."""
    args = common.parse_args(__doc__.splitlines()[0], argv)
    common.print_header(NAME, args)
    t0 = time.perf_counter()
    out = run(quick=args.quick)
    print("\nsummary:", out["summary"])
    path = common.write_results(NAME, args, {**config(args.quick), "lam": LAM}, out["rows"],
                                time.perf_counter() - t0, {"summary": out["summary"]})
    print(f"results written to {path.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
