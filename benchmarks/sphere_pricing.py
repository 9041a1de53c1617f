"""k > 1 pricing: the sphere branch and bound against the per-cell bound, same process.

:func:`run_multi_pricing` solves the ``multi`` instances of :mod:`pilanci_ergen` (k in {2, 3},
rank 3..5, N in {4, 8, 16}; its ``config`` and ``data``) by column generation twice: with the
pricing over output directions (:mod:`conic_dnn.two_layer.sphere`: exact, ``"cells_sphere"``,
within column generation's default ``pricing_budget``; ``"sphere_budget"`` where the cap was
reached) and with the older per-cell bound (``SPHERE_MAX_K`` set to 1 for the baseline), and returns
one row per instance and method (certified, relative gap, pricing method, rounds, time) plus
a summary (certified counts, gap quantiles, median time ratio). ``python
benchmarks/sphere_pricing.py [--quick]`` writes them to ``results/sphere_pricing.json``.
"""

from __future__ import annotations

import time

import numpy as np

import conic_dnn as cd
from conic_dnn.two_layer import pricing
from conic_dnn.two_layer.column_generation import solve_column_generation

try:
    from . import _common as common
    from . import pilanci_ergen as pe
except ImportError:  # run as a script
    import _common as common
    import pilanci_ergen as pe


def _solve(p, baseline: bool) -> dict:
    saved = pricing.SPHERE_MAX_K
    if baseline:
        pricing.SPHERE_MAX_K = 1
    try:
        t0 = time.perf_counter()
        res = solve_column_generation(p)
        elapsed = time.perf_counter() - t0
    finally:
        pricing.SPHERE_MAX_K = saved
    return {"certified": bool(res.certified), "exact": bool(res.exact),
            "rel_gap": float(res.gap / abs(res.objective)), "objective": res.objective,
            "lower_bound": res.lower_bound, "pricing": res.info["pricing"],
            "rounds": res.info["iterations"], "time": elapsed}


def run_multi_pricing(quick: bool = False, baseline: bool = True) -> dict:
    """Rows ``{k, d, bias, N, rank, new: {...}, old: {...} or None}`` and a summary."""
    rows = []
    for k, d, bias, N, seed in pe.config(quick)["multi"]:
        X, Y = pe.data("gauss", N, d, k, seed)
        p = cd.Problem(X, Y, 2, pe.LAM, bias=bias)
        row = {"k": k, "d": d, "bias": bias, "N": N, "seed": seed,
               "rank": int(np.linalg.matrix_rank(p.H0)), "new": _solve(p, False),
               "old": _solve(p, True) if baseline else None}
        rows.append(row)
        print(row, flush=True)
    summary = {}
    for key in ("new", "old"):
        got = [r[key] for r in rows if r[key] is not None]
        if not got:
            continue
        gaps = np.array([g["rel_gap"] for g in got])
        summary[key] = {"certified": f"{sum(g['certified'] for g in got)}/{len(got)}",
                        "gap_quantiles": {q: float(np.quantile(gaps, q))
                                          for q in (0.5, 0.9, 1.0)},
                        "median_time": float(np.median([g["time"] for g in got]))}
    if baseline:
        summary["median_time_ratio_new_over_old"] = float(np.median(
            [r["new"]["time"] / r["old"]["time"] for r in rows]))
    return {"rows": rows, "summary": summary}


NAME = "sphere_pricing"


def main(argv: list[str] | None = None) -> int:
    """Run both pricings on the grid and write ``results/sphere_pricing.json``."""
    args = common.parse_args(__doc__.splitlines()[0], argv)
    common.print_header(NAME, args)
    t0 = time.perf_counter()
    out = run_multi_pricing(quick=args.quick)
    print("\nsummary:", out["summary"])
    cfg = {"multi": pe.config(args.quick)["multi"], "lam": pe.LAM}
    path = common.write_results(NAME, args, cfg, out["rows"], time.perf_counter() - t0,
                                {"summary": out["summary"]})
    print(f"results written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
