"""Deep ReLU networks (depth 3 and 4): layerwise cone solves against gradient training.

For every instance (Gaussian ``X`` (N, 2), ``Y`` (N, 1), ``lam = 0.01``, seeded) this script
measures, in one process:

* ``conic_dnn.solve(p, max_sweeps=...)`` (alternating layer programs, default sweep "both"):
  objective, wall time, number of sweeps, and the share of the wall time spent in cvxpy
  compilation (``info['compile_time']``) and in the cone solver (``info['solver_time']``);
  the rest is neuron recovery (CP factorisation, Caratheodory), network rebuilding and the
  final L-BFGS polish;
* ``conic_dnn.train_lbfgs`` and ``conic_dnn.train_adam`` (width 32) from the same seed.

A second table compares the sweep orders ``"both"`` (the default), ``"backward"`` and
``"forward"`` on a few instances: final objective and time.

Run ``python benchmarks/deep.py`` (full grid) or ``--quick`` (smoke test).
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

NAME = "deep"
LAM = 0.01
WIDTH = 32
D, K = 2, 1
SWEEPS = ("backward", "forward", "both")


def config(quick: bool) -> dict:
    """Grid and baseline settings.

    Parameters
    ----------
    quick : bool

    Returns
    -------
    dict
    """
    if quick:
        return {"instances": [(3, 4)], "sweep_instances": [(3, 4)], "max_sweeps": 2,
                "d": D, "k": K, "lam": LAM, "width": WIDTH,
                "lbfgs": {"n_starts": 2, "max_iter": 200}, "adam": {"n_steps": 500}}
    # reduced grid: (3, 8) alone took 210 s and (4, 6) with forward/both sweeps several
    # minutes on 2 cores, which put the full run above 10 minutes (see benchmarks/README.md)
    return {"instances": [(3, 4), (3, 6), (3, 8), (3, 12), (4, 4), (4, 6), (4, 8), (4, 12)],
            "sweep_instances": [(3, 4), (3, 6), (4, 4)], "max_sweeps": 30,
            "d": D, "k": K, "lam": LAM, "width": WIDTH,
            "lbfgs": {"n_starts": 5, "max_iter": 1000}, "adam": {"n_steps": 2000}}


def make_problem(depth: int, N: int, seed: int) -> cd.Problem:
    """The seeded instance of the given depth and size."""
    X, Y = common.problem_data(N, D, K, seed)
    return cd.Problem(X, Y, depth=depth, lam=LAM, activation="relu")


def run_solve(p: cd.Problem, max_sweeps: int, sweep: str, seed: int) -> dict:
    """One alternating solve; the fields of a results row.

    Returns
    -------
    dict
    """
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            try:
                res = cd.solve(p, max_sweeps=max_sweeps, sweep=sweep, seed=seed)
            except cd.SizeLimitError as exc:
                res = cd.solve(p, method="lifted", max_sweeps=max_sweeps, sweep=sweep,
                               seed=seed)
                caught.append(warnings.WarningMessage(f"SizeLimitError: {exc}", UserWarning,
                                                      "", 0))
        except Exception as exc:  # a library error: record it and keep measuring
            return {"sweep": sweep, "error": f"{type(exc).__name__}: {exc}",
                    "objective": float("nan"), "our_time": time.perf_counter() - t0}
    wall = time.perf_counter() - t0
    ct, st = res.info.get("compile_time"), res.info.get("solver_time")
    return {
        "sweep": sweep, "method": res.method, "objective": res.objective,
        "our_time": res.solve_time, "our_wall": wall, "sweeps": res.info.get("sweeps"),
        "converged": res.success, "compile_time": ct, "solver_time": st,
        "compile_share": ct / res.solve_time if ct is not None else None,
        "solver_share": st / res.solve_time if st is not None else None,
        "other_share": (1 - (ct + st) / res.solve_time) if None not in (ct, st) else None,
        "rejected_steps": res.info.get("rejected_steps"),
        "inaccurate_steps": res.info.get("inaccurate_steps"),
        "widths": list(res.network.widths), "status": res.status, "solver": res.solver,
        "warnings": sorted({f"{w.category.__name__}: {str(w.message)[:120]}" for w in caught}),
    }


def run_instance(depth: int, N: int, seed: int, cfg: dict) -> dict:
    """Measure one instance (solve, L-BFGS, Adam).

    Returns
    -------
    dict
    """
    p = make_problem(depth, N, seed)
    row = {"depth": depth, "N": N}
    row.update(run_solve(p, cfg["max_sweeps"], "both", seed))
    lb = cd.train_lbfgs(p, WIDTH, seed=seed, **cfg["lbfgs"])
    ad = cd.train_adam(p, WIDTH, seed=seed, **cfg["adam"])
    row.update(lbfgs_objective=lb.objective, lbfgs_time=lb.solve_time,
               lbfgs_excess=common.rel_excess(lb.objective, row["objective"]),
               speed_ratio=lb.solve_time / row["our_time"],
               adam_objective=ad.objective, adam_time=ad.solve_time,
               adam_excess=common.rel_excess(ad.objective, row["objective"]))
    return row


COLUMNS = [
    ("depth", "L"), ("N", "N"), ("method", "method"), ("sweeps", "sweeps"),
    ("converged", "conv"), ("objective", "F_ours", ".6g"), ("our_time", "t_ours", ".2f"),
    ("compile_share", "comp%", ".0%"), ("solver_share", "solver%", ".0%"),
    ("other_share", "other%", ".0%"), ("lbfgs_time", "t_lbfgs", ".2f"),
    ("speed_ratio", "lbfgs/ours", ".2f"), ("lbfgs_excess", "dF_lbfgs", ".1e"),
    ("adam_time", "t_adam", ".2f"), ("adam_excess", "dF_adam", ".1e"), ("widths", "widths"),
]
SWEEP_COLUMNS = [
    ("depth", "L"), ("N", "N"), ("sweep", "sweep"), ("sweeps", "sweeps"),
    ("converged", "conv"), ("objective", "F", ".8g"), ("excess_vs_best", "dF_vs_best", ".1e"),
    ("our_time", "time", ".2f"), ("compile_share", "comp%", ".0%"),
    ("solver_share", "solver%", ".0%"), ("inaccurate_steps", "inacc"),
]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit code."""
    args = common.parse_args(__doc__.splitlines()[0], argv)
    cfg = config(args.quick)
    common.print_header(NAME, args)
    t_start = time.perf_counter()
    # warm-up: the first cvxpy solve of a process pays one-off import and setup costs
    cd.solve(make_problem(2, 3, args.seed + 999))

    rows = []
    for depth, N in cfg["instances"]:
        row = run_instance(depth, N, args.seed, cfg)
        rows.append(row)
        print(f"  L={depth} N={N}: ours {row['our_time']:.2f} s ({row['sweeps']} sweeps), "
              f"L-BFGS {row['lbfgs_time']:.2f} s", flush=True)

    sweep_rows = []
    for depth, N in cfg["sweep_instances"]:
        p = make_problem(depth, N, args.seed)
        group = []
        for sweep in SWEEPS:
            done = [r for r in rows if (r["depth"], r["N"], r["sweep"]) == (depth, N, sweep)]
            rec = dict(done[0]) if done else run_solve(p, cfg["max_sweeps"], sweep, args.seed)
            rec.update(depth=depth, N=N, reused_from_main_table=bool(done))
            group.append(rec)
            print(f"  L={depth} N={N} sweep={sweep}: F={rec['objective']:.8g}, "
                  f"{rec['our_time']:.2f} s", flush=True)
        best = float(np.nanmin([r["objective"] for r in group]))
        for rec in group:
            rec["excess_vs_best"] = common.rel_excess(rec["objective"], best)
        sweep_rows.extend(group)

    def med(key, sel=lambda r: True):
        vals = [r[key] for r in rows if sel(r) and r.get(key) is not None]
        return float(np.median(vals)) if vals else None

    summary = {
        "median_lbfgs_excess": med("lbfgs_excess"), "median_adam_excess": med("adam_excess"),
        "median_speed_ratio": med("speed_ratio"), "median_compile_share": med("compile_share"),
        "median_solver_share": med("solver_share"), "median_other_share": med("other_share"),
        "sweep_order": {s: {
            "mean_excess_vs_best": float(np.mean([r["excess_vs_best"] for r in sweep_rows
                                                  if r["sweep"] == s])),
            "total_time": float(sum(r["our_time"] for r in sweep_rows if r["sweep"] == s)),
            "times_best": sum(r["excess_vs_best"] <= 1e-9 for r in sweep_rows
                              if r["sweep"] == s)} for s in SWEEPS} if sweep_rows else {},
    }
    common.print_table(
        f"Deep ReLU, d={D}, k={K}, lam={LAM}: solve(max_sweeps={cfg['max_sweeps']}) vs "
        f"L-BFGS ({cfg['lbfgs']['n_starts']} starts, max_iter {cfg['lbfgs']['max_iter']}) and "
        f"Adam ({cfg['adam']['n_steps']} steps), width {WIDTH}; dF = (F_trainer - F_ours)/F_ours",
        rows, COLUMNS)
    common.print_table("Sweep order (dF_vs_best: relative excess over the best of the three)",
                       sweep_rows, SWEEP_COLUMNS)
    srows = [{"sweep": s, **v} for s, v in summary["sweep_order"].items()]
    common.print_table("Sweep order summary", srows, [
        ("sweep", "sweep"), ("times_best", "best"), ("mean_excess_vs_best", "mean dF", ".1e"),
        ("total_time", "total time", ".2f")])
    print(f"\nmedian shares of solve time: compile {summary['median_compile_share']:.0%}, "
          f"solver {summary['median_solver_share']:.0%}, other "
          f"{summary['median_other_share']:.0%}")
    wall = time.perf_counter() - t_start
    path = common.write_results(NAME, args, cfg, rows, wall,
                                {"sweep_rows": sweep_rows, "summary": summary})
    print(f"wall time {wall:.1f} s; results written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
