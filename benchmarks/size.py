"""How far does an exact-or-relaxed two-layer solve go in a time budget?

For the ``pattern`` and ``lifted`` representations and for inputs of dimension d = 2 (the
first layer only needs the sign patterns of a 2-D hyperplane arrangement: O(N^2) of them) and
d = N (all 2^N patterns), N grows until one solve of ``conic_dnn.solve`` (depth 2, ReLU,
lam = 0.01, one output) exceeds the budget (60 s; quick: 5 s). Reported per solve: seconds
(total, cvxpy compilation, solver), number of patterns, objective, lower bound and relative gap
(the ``pattern`` gap is 0 up to solver accuracy where the relaxation is tight). The pattern
size guard is bypassed (``force=True``) to find the real limit.

Run: ``python benchmarks/size.py [--quick]``.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

import conic_dnn as cd  # noqa: E402

NAME = "size"


def main(argv=None) -> int:
    args = common.parse_args(__doc__.splitlines()[0], argv)
    common.print_header(NAME, args)
    t_start = time.perf_counter()
    budget = 5.0 if args.quick else 60.0
    grids = {
        ("pattern", "2"): [4, 6, 8] if args.quick else [4, 8, 16, 24, 32, 48, 64, 80, 96, 128],
        ("pattern", "N"): [4, 5] if args.quick else [4, 5, 6, 7, 8, 9, 10, 11],
        ("lifted", "2"): [4, 8] if args.quick else [4, 8, 12, 16, 24, 32, 40, 48],
        ("lifted", "N"): [4, 8] if args.quick else [4, 8, 12, 16, 20, 24, 32],
    }
    rows, largest = [], {}
    for (rep, dmode), Ns in grids.items():
        for N in Ns:
            d = 2 if dmode == "2" else N
            X, Y = common.problem_data(N, d, 1, args.seed)
            p = cd.Problem(X, Y, 2, 0.01)
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    res = cd.solve(p, method=rep, force=True)
                    err = None
                except cd.SolverFailedError as exc:
                    res, err = None, str(exc)
            sec = time.perf_counter() - t0
            row = {"method": rep, "d": dmode, "N": N, "seconds": sec, "error": err}
            if res is not None:
                row.update({
                    "compile_s": res.info.get("compile_time"),
                    "solver_s": res.info.get("solver_time"),
                    "patterns": res.info.get("n_patterns"),
                    "objective": res.objective, "lower_bound": res.lower_bound,
                    "rel_gap": res.gap / max(abs(res.objective), 1e-300),
                    "certified": res.certified, "status": res.status})
            rows.append(row)
            common.print_table(f"{rep}, d = {dmode}, N = {N}", [row], [
                ("seconds", "s", ".2f"), ("compile_s", "compile s", ".2f"),
                ("solver_s", "solver s", ".2f"), ("patterns", "patterns"),
                ("objective", "objective", ".6g"), ("rel_gap", "rel gap", ".1e"),
                ("certified", "cert."), ("status", "status")])
            if sec > budget or err is not None:
                break
            largest[f"{rep}, d={dmode}"] = N
    wall = time.perf_counter() - t_start
    summary = {"budget_s": budget, "largest_N_within_budget": largest}
    print(f"\nlargest N solved within {budget:g} s: {largest}")
    path = common.write_results(NAME, args, {"grids": {f"{k[0]}, d={k[1]}": v
                                                       for k, v in grids.items()},
                                             "budget_s": budget}, rows, wall,
                                {"summary": summary})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
