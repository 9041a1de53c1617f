"""Column generation for depth 2 (squared loss): time, rounds, columns and certified gap vs N.

For every instance of the grid (Gaussian ``X`` (N, d), ``Y`` (N, k = 1), ``lam = 0.01``, ReLU,
seeded; ``d = 2`` without bias and ``d = 1`` with bias 1, both with ``rank(H0) = 2`` so the
pricing is exact) this script measures, in one process:

* ``conic_dnn.two_layer.column_generation.solve_column_generation(p)`` (``tol = 1e-6``):
  wall time, its split into master (group-lasso SOC programs) and pricing time, rounds,
  dictionary size,
  width of the returned network, final gap (absolute and relative) and the certificate;
* for ``N <= 12`` the exact pattern program ``conic_dnn.solve(p, method="pattern")``: its time,
  the relative objective difference ``(F_cg - F_pattern) / F_pattern`` and the time ratio
  ``t_pattern / t_cg``.

A second table, *sparsity of certified optima*: on the real / teacher data of
``benchmarks/sparsity.py`` with ``rank(H0) = 2`` (``teacher2``: d = 2 ReLU teacher; ``moons``
without bias), N from 8 to 64, ``lam`` 1e-2 and 1e-3: the width of the certified global
optimum column generation returns (and after Caratheodory / LP pruning) against N^2/4 and
N(N+1). The paper observes that ordinary data need far fewer than N^2/4 neurons; these rows
check that *at certified global optima* (gap <= 1e-8 max(1, F)).

Run ``python benchmarks/column_generation.py`` (full grid) or ``--quick`` (smoke test).
"""

from __future__ import annotations

import time
import warnings

import numpy as np

import conic_dnn as cd
from conic_dnn.two_layer.column_generation import solve_column_generation

try:
    from . import _common as common
except ImportError:  # run as a script
    import _common as common

NAME = "column_generation"
LAM = 0.01
EXACT_MAX_N = 12


def config(quick: bool) -> dict:
    """Grid and settings.

    Parameters
    ----------
    quick : bool

    Returns
    -------
    dict
    """
    if quick:
        return {"N": [10], "shapes": [[2, 0.0]], "seeds": [0], "k": 1, "lam": LAM,
                "tol": 1e-6, "exact_max_N": EXACT_MAX_N,
                "sparsity": {"datasets": ["teacher2"], "N": [8], "lams": [1e-2], "seeds": [0]}}
    return {"N": [10, 20, 40, 80], "shapes": [[2, 0.0], [1, 1.0]], "seeds": [0, 1, 2], "k": 1,
            "lam": LAM, "tol": 1e-6, "exact_max_N": EXACT_MAX_N,
            "sparsity": {"datasets": ["teacher2", "moons"], "N": [8, 12, 16, 24, 32, 64],
                         "lams": [1e-2, 1e-3], "seeds": [0, 1, 2]}}


def plot_sparsity(rows: list[dict], path) -> None:
    """Widths of the certified optima against N, with the N(N+1) and N^2/4 curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    Ns = np.array(sorted({r["N"] for r in rows}), dtype=float)
    ax.plot(Ns, Ns * (Ns + 1), "k-", lw=2, label="N(N+1) (Caratheodory bound)")
    ax.plot(Ns, Ns**2 / 4, "k:", lw=2, label="N^2/4 (tight example)")
    styles = {("teacher2", 0.01): ("tab:blue", "o"), ("teacher2", 0.001): ("tab:blue", "s"),
              ("moons", 0.01): ("tab:red", "o"), ("moons", 0.001): ("tab:red", "s")}
    for (ds, lam), (color, marker) in styles.items():
        sel = [r for r in rows if r["dataset"] == ds and r["lam"] == lam and r["certified"]]
        if sel:
            jitter = 1 + 0.03 * np.array([r["seed"] - 1 for r in sel])
            ax.scatter(np.array([r["N"] for r in sel]) * jitter, [r["width"] for r in sel],
                       color=color, marker=marker, facecolors="none",
                       label=f"{ds}, lam {lam:g} (certified optimum)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("N (training samples)")
    ax.set_ylabel("hidden neurons of the certified global optimum")
    ax.set_title("Depth 2, ReLU, rank(H0) = 2: column generation, gap <= 1e-8 |F|", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_sparsity(cfg: dict) -> list[dict]:
    """Widths of certified global optima (module docstring, second table)."""
    try:
        from .sparsity import load
    except ImportError:  # run as a script
        from sparsity import load
    sp = cfg["sparsity"]
    rows = []
    for ds in sp["datasets"]:
        for N in sp["N"]:
            for seed in sp["seeds"]:
                X, Y, _ = load(ds, N, seed)  # no bias: rank(H0) = 2, exact pricing
                for lam in sp["lams"]:
                    p = cd.Problem(X, Y, 2, lam)
                    t0 = time.perf_counter()
                    res = solve_column_generation(p, tol=1e-8)  # gap <= 1e-8 max(1, F)
                    t = time.perf_counter() - t0
                    rep = cd.sparsity_report(p, res.network)
                    lay = rep.layers[0]
                    rows.append({
                        "dataset": ds, "N": N, "seed": seed, "lam": lam,
                        "objective": res.objective, "lower_bound": res.lower_bound,
                        "rel_gap": res.gap / max(abs(res.objective), 1e-300),
                        "certified": res.certified, "width": res.network.widths[0],
                        "pruned_caratheodory": lay.pruned_caratheodory,
                        "pruned_lp": lay.pruned_lp, "rank": lay.rank,
                        "tight_bound": N * N / 4, "caratheodory_bound": N * (N + 1),
                        "width_over_tight": res.network.widths[0] / (N * N / 4), "time": t})
                    print(f"  sparsity {ds} N={N} seed={seed} lam={lam:g}: width "
                          f"{res.network.widths[0]} (N^2/4 = {N * N / 4:g}), certified "
                          f"{res.certified}, {t:.2f} s", flush=True)
    return rows


def run_instance(N: int, d: int, bias: float, seed: int, cfg: dict) -> dict:
    """Measure one instance.

    Returns
    -------
    dict
        One row of the results.
    """
    X, Y = common.problem_data(N, d, cfg["k"], seed)
    p = cd.Problem(X, Y, depth=2, lam=cfg["lam"], activation="relu", bias=bias)
    row = {"N": N, "d": d, "bias": bias, "seed": seed}
    t0 = time.perf_counter()
    res = solve_column_generation(p, tol=cfg["tol"], seed=seed)
    row["cg_time"] = time.perf_counter() - t0
    row.update(objective=res.objective, lower_bound=res.lower_bound, gap=res.gap,
               rel_gap=res.gap / max(abs(res.objective), 1e-300), certified=res.certified,
               exact=res.exact, iterations=res.info["iterations"],
               columns=res.info["n_columns"], width=res.network.widths[0],
               master_time=res.info["master_time"], pricing_time=res.info["pricing_time"],
               pricing=res.info["pricing"])
    if N <= cfg["exact_max_N"]:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ex = cd.solve(p, method="pattern")
        row["pattern_time"] = time.perf_counter() - t0
        row.update(pattern_objective=ex.objective, pattern_lower_bound=ex.lower_bound,
                   pattern_certified=ex.certified,
                   objective_diff=common.rel_excess(res.objective, ex.objective),
                   time_ratio=row["pattern_time"] / row["cg_time"])
    return row


COLUMNS = [
    ("N", "N"), ("d", "d"), ("bias", "bias", "g"), ("seed", "seed"),
    ("certified", "cert"), ("objective", "F_cg", ".8g"), ("rel_gap", "rel.gap", ".1e"),
    ("cg_time", "t_cg", ".3f"), ("master_time", "t_master", ".3f"),
    ("pricing_time", "t_pricing", ".3f"), ("iterations", "rounds"), ("columns", "columns"),
    ("width", "width"), ("pattern_time", "t_pattern", ".3f"),
    ("time_ratio", "pattern/cg", ".1f"), ("objective_diff", "dF_vs_pattern", ".1e"),
]


def summarise(rows: list[dict]) -> list[dict]:
    """Median time, rounds and worst relative gap per (N, d).

    Returns
    -------
    list of dict
    """
    out = []
    for N in sorted({r["N"] for r in rows}):
        for d in sorted({r["d"] for r in rows}):
            sel = [r for r in rows if r["N"] == N and r["d"] == d and "error" not in r]
            if not sel:
                continue
            out.append({"N": N, "d": d, "instances": len(sel),
                        "certified": sum(bool(r["certified"]) for r in sel),
                        "cg_time": float(np.median([r["cg_time"] for r in sel])),
                        "iterations": float(np.median([r["iterations"] for r in sel])),
                        "columns": float(np.median([r["columns"] for r in sel])),
                        "max_rel_gap": float(max(r["rel_gap"] for r in sel))})
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit code."""
    args = common.parse_args(__doc__.splitlines()[0], argv)
    cfg = config(args.quick)
    common.print_header(NAME, args)
    t_start = time.perf_counter()
    # warm-up: the first cvxpy solve of a process pays one-off import and setup costs
    Xw, Yw = common.problem_data(4, 2, 1, args.seed + 999)
    solve_column_generation(cd.Problem(Xw, Yw, depth=2, lam=LAM))
    rows = []
    for N in cfg["N"]:
        for d, bias in cfg["shapes"]:
            for s in cfg["seeds"]:
                seed = args.seed + s
                try:
                    row = run_instance(N, d, bias, seed, cfg)
                except Exception as exc:  # a library error: record it and keep measuring
                    row = {"N": N, "d": d, "bias": bias, "seed": seed,
                           "error": f"{type(exc).__name__}: {exc}"}
                    print(f"  N={N} d={d} seed={seed}: {row['error']}", flush=True)
                    rows.append(row)
                    continue
                rows.append(row)
                print(f"  N={N} d={d} bias={bias:g} seed={seed}: {row['cg_time']:.3f} s, "
                      f"{row['iterations']} rounds, rel.gap {row['rel_gap']:.1e}", flush=True)
    summary = summarise(rows)
    common.print_table(f"Column generation, depth 2, ReLU, lam={LAM}, tol={cfg['tol']:g} "
                       f"(rank(H0) = 2: exact pricing); pattern = cd.solve(method='pattern')",
                       rows, COLUMNS)
    common.print_table("Medians per (N, d)", summary, [
        ("N", "N"), ("d", "d"), ("instances", "n"), ("certified", "certified"),
        ("cg_time", "t_cg", ".3f"), ("iterations", "rounds", ".0f"),
        ("columns", "columns", ".0f"), ("max_rel_gap", "max rel.gap", ".1e")])
    sparsity = run_sparsity(cfg)
    common.print_table(
        "Sparsity of certified global optima (column generation, no bias, rank(H0) = 2)",
        sparsity, [("dataset", "data"), ("N", "N"), ("seed", "seed"), ("lam", "lam", "g"),
                   ("certified", "cert"), ("rel_gap", "rel.gap", ".1e"), ("width", "width"),
                   ("pruned_caratheodory", "carath."), ("pruned_lp", "LP"),
                   ("tight_bound", "N^2/4", "g"), ("caratheodory_bound", "N(N+1)"),
                   ("width_over_tight", "width/(N^2/4)", ".2f"), ("time", "t", ".2f")])
    wall = time.perf_counter() - t_start
    path = common.write_results(NAME, args, cfg, rows, wall,
                                {"summary": summary, "sparsity": sparsity})
    fig = path.with_name("sparsity_certified" + ("_quick" if args.quick else "") + ".png")
    plot_sparsity(sparsity, fig)
    print(f"figure written to {fig}")
    print(f"\nwall time {wall:.1f} s; results written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
