"""Clarabel against SCS on the same two-layer cone programs.

For every instance (Gaussian ``X`` (N, d), ``Y`` (N, 1), ``lam = 0.01``, ReLU, depth 2,
seeded) this script runs ``conic_dnn.solve(p, solver="CLARABEL")`` and
``conic_dnn.solve(p, solver="SCS")`` (no fallback: the named solver only) and reports time,
objective, lower bound, status and the relative disagreement of the two lower bounds and
objectives. A lower bound above the objective (a negative gap) beyond solver accuracy is
flagged: the cone program's value is then not a valid bound.

Chordal decomposition: Clarabel decomposes a PSD cone whose aggregate sparsity pattern is
chordal and not dense (``chordal_decomposition_enable``, on by default). The same programs
(``conic_dnn.two_layer.cone_program.build_program``: pattern d = N, lifted d = N and d = 2)
are solved with it on and off, twice each: reported are the solver times and whether the
values agree bit for bit (they do when Clarabel found nothing to decompose).

Run ``python benchmarks/solvers.py`` (full grid) or ``--quick`` (smoke test).
"""

from __future__ import annotations

import time
import warnings

import numpy as np

import conic_dnn as cd

try:
    from . import _common as common
except ImportError:  # run as a script
    import _common as common

NAME = "solvers"
LAM = 0.01
SOLVERS = ("CLARABEL", "SCS")
#: Relative negative gap beyond which the lower bound is flagged as invalid.
NEG_GAP_FLAG = 1e-6


def chordal_rows(instances) -> list[dict]:
    """Solve each program with Clarabel's chordal decomposition on and off (twice each).

    Returns
    -------
    list of dict
        ``method, N, d, t_on, t_off`` (minimum solver seconds) and ``same_value``.
    """
    from conic_dnn.two_layer.cone_program import build_program

    opts = {"max_iter": 500, "tol_gap_abs": 1e-8, "tol_gap_rel": 1e-8, "tol_feas": 1e-8}
    out = []
    for method, N, d in instances:
        X, Y = common.problem_data(N, d, 1, 0)
        p = cd.Problem(X, Y, 2, LAM)
        prog = build_program(p, method)
        prog.set_data(p.lam, p.G0, Y=p.Y)
        times, values = {True: [], False: []}, {True: [], False: []}
        for on in (True, False, True, False):
            prog.problem.solve(solver="CLARABEL", chordal_decomposition_enable=on, **opts)
            times[on].append(prog.problem.solver_stats.solve_time)
            values[on].append(prog.problem.value)
        out.append({"method": method, "N": N, "d": d, "t_on": min(times[True]),
                    "t_off": min(times[False]),
                    "same_value": len(set(values[True] + values[False])) == 1})
    return out


def config(quick: bool) -> dict:
    """Grid.

    Parameters
    ----------
    quick : bool

    Returns
    -------
    dict
    """
    if quick:
        return {"N": [3, 4], "d": [2], "k": 1, "lam": LAM,
                "chordal": [("pattern", 4, 4), ("lifted", 8, 2)]}
    return {"N": [3, 4, 6, 8], "d": [2, 5], "k": 1, "lam": LAM,
            "chordal": [("pattern", 8, 8), ("pattern", 9, 9), ("lifted", 24, 24),
                        ("lifted", 16, 2)]}


def run_one(p: cd.Problem, solver: str) -> dict:
    """One solve with a named solver; failures are recorded, not raised.

    Returns
    -------
    dict
    """
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = cd.solve(p, solver=solver)
        except Exception as exc:  # SolverFailedError, or a library error worth recording
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                    "time": time.perf_counter() - t0}
    rel_gap = res.gap / max(abs(res.objective), 1e-300)
    return {
        "ok": True, "time": res.solve_time, "objective": res.objective,
        "lower_bound": res.lower_bound, "rel_gap": rel_gap, "certified": res.certified,
        "exact": res.exact, "status": res.status, "solver": res.solver, "method": res.method,
        "compile_time": res.info.get("compile_time"), "solver_time": res.info.get("solver_time"),
        "iterations": res.info.get("iterations"), "widths": list(res.network.widths),
        "invalid_bound": bool(rel_gap < -NEG_GAP_FLAG),
        "warnings": sorted({f"{w.category.__name__}: {str(w.message)[:120]}" for w in caught}),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit code."""
    args = common.parse_args(__doc__.splitlines()[0], argv)
    cfg = config(args.quick)
    common.print_header(NAME, args)
    t_start = time.perf_counter()
    Xw, Yw = common.problem_data(3, 2, 1, args.seed + 999)
    for s in SOLVERS:  # warm-up of both solver interfaces
        cd.solve(cd.Problem(Xw, Yw, depth=2, lam=LAM), solver=s)
    rows = []
    for N in cfg["N"]:
        for d in cfg["d"]:
            X, Y = common.problem_data(N, d, cfg["k"], args.seed)
            p = cd.Problem(X, Y, depth=2, lam=LAM, activation="relu")
            row = {"N": N, "d": d, "k": cfg["k"]}
            for s in SOLVERS:
                rec = run_one(p, s)
                row.update({f"{s.lower()}_{key}": val for key, val in rec.items()})
            c, q = row.get("clarabel_lower_bound"), row.get("scs_lower_bound")
            if c is not None and q is not None:
                row["lb_rel_diff"] = (q - c) / max(abs(c), 1e-300)
                row["obj_rel_diff"] = common.rel_excess(row["scs_objective"],
                                                        row["clarabel_objective"])
                row["time_ratio"] = row["scs_time"] / row["clarabel_time"]
            rows.append(row)
            print(f"  N={N} d={d}: CLARABEL {row.get('clarabel_time', 0):.3f} s "
                  f"({row.get('clarabel_status', 'failed')}), SCS "
                  f"{row.get('scs_time', 0):.3f} s ({row.get('scs_status', 'failed')})",
                  flush=True)
    common.print_table(
        f"Clarabel vs SCS, two-layer ReLU, k={cfg['k']}, lam={LAM} "
        "(rgap = (F - LB)/F; diffs are (SCS - Clarabel)/Clarabel)", rows, [
            ("N", "N"), ("d", "d"), ("clarabel_method", "method"),
            ("clarabel_time", "t_clar", ".3f"), ("scs_time", "t_scs", ".3f"),
            ("time_ratio", "scs/clar", ".1f"), ("clarabel_status", "st_clar"),
            ("scs_status", "st_scs"), ("clarabel_lower_bound", "LB_clar", ".8g"),
            ("scs_lower_bound", "LB_scs", ".8g"), ("lb_rel_diff", "dLB", ".1e"),
            ("obj_rel_diff", "dF", ".1e"), ("clarabel_rel_gap", "rgap_clar", ".1e"),
            ("scs_rel_gap", "rgap_scs", ".1e"), ("scs_invalid_bound", "scs LB>F"),
        ])
    times = [r["time_ratio"] for r in rows if "time_ratio" in r]
    lbd = [abs(r["lb_rel_diff"]) for r in rows
           if "lb_rel_diff" in r and np.isfinite(r["lb_rel_diff"])]
    summary = {
        "median_time_ratio_scs_over_clarabel": float(np.median(times)) if times else None,
        "max_abs_lb_rel_diff": float(max(lbd)) if lbd else None,
        "median_abs_lb_rel_diff": float(np.median(lbd)) if lbd else None,
        "failures": {s: sum(not r.get(f"{s.lower()}_ok", False) for r in rows) for s in SOLVERS},
        "no_bound": {s: sum(not np.isfinite(r.get(f"{s.lower()}_lower_bound", np.nan))
                            for r in rows) for s in SOLVERS},
        "invalid_bounds": {s: sum(bool(r.get(f"{s.lower()}_invalid_bound")) for r in rows)
                           for s in SOLVERS},
    }
    print(f"\nmedian time SCS/Clarabel {summary['median_time_ratio_scs_over_clarabel']}, "
          f"finite lower bounds agree to {summary['max_abs_lb_rel_diff']} (max rel.), "
          f"no bound (-inf) {summary['no_bound']}, failures "
          f"{summary['failures']}, lower bound above objective {summary['invalid_bounds']}")
    chordal = chordal_rows(cfg["chordal"])
    common.print_table("Clarabel's chordal decomposition on vs off (solver seconds, min of 2)",
                       chordal, [("method", "method"), ("N", "N"), ("d", "d"),
                                 ("t_on", "t_on", ".3f"), ("t_off", "t_off", ".3f"),
                                 ("same_value", "same value")])
    summary["chordal_time_ratio_off_over_on"] = [r["t_off"] / r["t_on"] for r in chordal]
    summary["chordal_same_values"] = all(r["same_value"] for r in chordal)
    wall = time.perf_counter() - t_start
    path = common.write_results(NAME, args, cfg, rows, wall,
                                {"summary": summary, "chordal": chordal})
    print(f"wall time {wall:.1f} s; results written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
