"""Depth 2 beyond the plane: exact column generation against the Pilanci-Ergen program.

Measured in one process (timings are ratios on a shared machine; one untimed warm-up solve of
each method first, and at N <= 16, where a solve takes milliseconds, each method timed as the
fastest of two runs, the same rule for both):

* ``exact``: squared loss, one output, ReLU, ``lam = 0.05``, rank(H0) in {3, 4, 5} (Gaussian X
  with and without bias, iris standardised, digits projected on their top principal
  components): ``solve_column_generation`` (exact cell pricing, rigorous Fenchel bound) and,
  where it fits, the Pilanci-Ergen convex program (:func:`solve_pilanci_ergen`: the group
  lasso over ALL arrangement patterns with the cone constraints ``(2 D_i - I) H0 w >= 0``, in
  cvxpy + Clarabel, written from the paper's formulation); relative gap, objectives, times;
  and the time of the certificate ALONE at the returned network (:func:`certificate_time`:
  cell enumeration, one exact pricing, the bound), so ``pe_time / cert_time`` is the most a
  method that certifies by exact pricing could gain on the instance.
* ``multi``: k in {2, 3}, rank 3..5, N <= 16: column generation's bound (the branch and bound
  over output directions of :mod:`conic_dnn.two_layer.sphere`, within the default
  ``pricing_budget``; capped: a valid, looser bound), checked against the exact pattern
  program at N = 4 and against multi-start L-BFGS of a wide network everywhere (a bound above
  a trained loss would be a bug); gap distribution, times, how many reached the cap.
* ``losses``: logistic / hinge / Huber at N = 16..32, rank 2..4: certified gaps, and the bound
  against multi-start training.
* ``auto``: ``cd.solve(method="auto")`` against each single method on a small grid (ranks 3
  and 4, and planar data): who certifies and how fast.

Run ``python benchmarks/pilanci_ergen.py`` (full grid) or ``--quick`` (smoke test).
"""

from __future__ import annotations

import time
import warnings

import cvxpy as cp
import numpy as np

import conic_dnn as cd
from conic_dnn.solve import pattern_time_estimate
from conic_dnn.training.gradient import train_lbfgs
from conic_dnn.two_layer.cells import cell_patterns
from conic_dnn.two_layer.column_generation import solve_column_generation
from conic_dnn.two_layer.pricing import cell_patterns_for, lower_bound, price

try:
    from . import _common as common
except ImportError:  # run as a script
    import _common as common

NAME = "pilanci_ergen"
LAM = 0.05


def config(quick: bool) -> dict:
    """Grid and settings (see the module docstring)."""
    if quick:
        return {"exact": [("gauss", 3, 0.0, 8, 0)], "pe_max_cells": 400,
                "multi": [(2, 3, 0.0, 4, 0)], "losses": [("logistic", 2, 1.0, 16, 0)],
                "auto": [(1, 3, 0.0, 8, 0, "mse")], "train_starts": 3}
    exact = []
    for N in (8, 16, 32):
        for ds, d, bias in (("gauss", 3, 0.0), ("gauss", 4, 0.0), ("gauss", 2, 1.0),
                            ("gauss", 3, 1.0), ("iris", 4, 0.0), ("digits", 3, 0.0),
                            ("digits", 4, 0.0), ("gauss", 5, 0.0), ("gauss", 4, 1.0)):
            if d + (bias > 0) == 5 and N > 16:  # rank 5 at N = 32: ~140 s, measured once
                continue
            for seed in ((0, 1, 2) if ds == "gauss" and N == 32 and d + (bias > 0) <= 4
                         else (0,)):
                exact.append((ds, d, bias, N, seed))
    exact += [("gauss", 3, 0.0, 64, 0), ("iris", 3, 0.0, 64, 0), ("gauss", 2, 1.0, 64, 0),
              ("gauss", 3, 1.0, 64, 0)]
    multi = [(k, d, b, N, s) for k in (2, 3) for d, b in ((3, 0.0), (4, 0.0), (4, 1.0))
             for N in (4, 8, 16) for s in (0,)]
    losses = [(loss, d, b, N, 0) for loss in ("logistic", "hinge", "huber")
              for d, b in ((2, 0.0), (3, 1.0)) for N in (16, 32)]
    auto = [(k, 3, 0.0, N, 0, "mse") for k in (1, 2) for N in (6, 10)]
    auto += [(1, 4, 0.0, 8, 0, "mse"), (1, 4, 0.0, 16, 0, "mse"), (1, 3, 0.0, 16, 0, "logistic")]
    # planar (rank(H0) = 2, both methods exact)
    auto += [(1, 2, 0.0, 24, 0, "mse"), (2, 2, 0.0, 16, 0, "mse"), (2, 2, 0.0, 5, 0, "mse")]
    return {"exact": exact, "pe_max_cells": 2500, "multi": multi, "losses": losses,
            "auto": auto, "train_starts": 5, "auto_repeats": 2, "exact_repeats": 2}


def data(ds: str, N: int, d: int, k: int, seed: int, loss: str = "mse"):
    """``(X (N, d), Y (N, k))``: Gaussian, iris (standardised, first d features) or digits
    (projected on the top d principal components); targets per loss."""
    rng = np.random.default_rng([seed, N, d, k])
    if ds == "gauss":
        X = rng.normal(size=(N, d))
    else:
        from sklearn.datasets import load_digits, load_iris

        full = (load_iris if ds == "iris" else load_digits)().data.astype(float)
        full = full[rng.choice(len(full), N, replace=False)]
        full = (full - full.mean(0)) / np.maximum(full.std(0), 1e-12)
        if ds == "digits":
            _, _, Vt = np.linalg.svd(full, full_matrices=False)
            X = full @ Vt[:d].T
        else:
            X = full[:, :d]
        X = X / np.sqrt(np.mean(X**2))
    if loss in ("logistic", "hinge"):
        Y = np.sign(X[:, :1] * X[:, -1:] + 0.3 * rng.normal(size=(N, 1)))
        Y[Y == 0] = 1.0
    else:
        Y = rng.normal(size=(N, k))
    return X, Y


def solve_pilanci_ergen(problem: cd.Problem, solver: str = "CLARABEL"):
    """The Pilanci-Ergen program (squared loss, ReLU, one output) over ALL arrangement
    patterns ``D_i``: ``min (1/N) ||sum_i D_i H0 (v_i - w_i) + bias c 1 - y||^2 + 2 lam
    sum_i (||v_i|| + ||w_i||) + lam c^2`` s.t. ``(2 D_i - I) H0 v_i >= 0``, same for ``w_i``.
    Returns ``(objective, build_seconds, solve_seconds, n_patterns)``."""
    t0 = time.perf_counter()
    H0, y, N, lam, beta = problem.H0, problem.Y[:, 0], problem.N, problem.lam, problem.bias
    pats = cell_patterns(H0)
    pats = pats[pats.any(axis=1)]  # D = 0 contributes nothing
    m, dp = len(pats), H0.shape[1]
    Vv, Wv = cp.Variable((dp, m)), cp.Variable((dp, m))
    Dm = pats.astype(float)
    S = 2 * Dm - 1
    out = cp.sum(cp.multiply(Dm.T, H0 @ (Vv - Wv)), axis=1)
    cons = [cp.multiply(S.T, H0 @ Vv) >= 0, cp.multiply(S.T, H0 @ Wv) >= 0]
    reg = 2 * lam * (cp.sum(cp.norm(Vv, 2, axis=0)) + cp.sum(cp.norm(Wv, 2, axis=0)))
    if beta > 0:
        c = cp.Variable()
        out = out + beta * c
        reg = reg + lam * cp.square(c)
    prob = cp.Problem(cp.Minimize(cp.sum_squares(out - y) / N + reg), cons)
    t1 = time.perf_counter()
    prob.solve(solver=solver)
    t2 = time.perf_counter()
    return float(prob.value), t1 - t0, t2 - t1, m


def certificate_time(problem: cd.Problem, network: cd.Network) -> tuple[float, float]:
    """``(seconds, lower_bound)`` of the certificate ALONE for a given network (one output,
    squared loss): the cell enumeration, one exact pricing at the network's dual point
    ``Lambda = -grad C(Z)`` and the Fenchel bound. A method that somehow knew the optimum
    would still pay this to certify it: ``pe_time / cert_time`` bounds the speed-up a method
    that certifies by exact pricing can reach on the instance."""
    t0 = time.perf_counter()
    Z = network.forward(problem.X)[-1]
    Lam = -problem.loss.gradient(Z, problem.Y)
    cells = cell_patterns_for(problem)
    rho, _, _ = price(problem, Lam, max_patterns=0, cells=cells, target=2 * problem.lam)
    lb = lower_bound(problem, Lam, rho)
    return time.perf_counter() - t0, float(lb)


def _trained(p: cd.Problem, starts: int, seed: int) -> float:
    width = max(2 * p.N, 8)
    return float(train_lbfgs(p, [width], n_starts=starts, seed=seed, max_iter=3000).objective)


def _warm_up():
    """One untimed solve of each method (first-call costs: imports, caches, cvxpy's
    canonicalisation machinery), so that no instance's time carries them."""
    X, Y = data("gauss", 6, 3, 1, 99)
    p = cd.Problem(X, Y, 2, LAM)
    solve_column_generation(p)
    solve_pilanci_ergen(p)


def run_exact(cfg):
    rows = []
    reps = cfg.get("exact_repeats", 1)  # each method timed as the fastest of reps runs
    _warm_up()
    for ds, d, bias, N, seed in cfg["exact"]:
        X, Y = data(ds, N, d, 1, seed)
        p = cd.Problem(X, Y, 2, LAM, bias=bias)
        rank = int(np.linalg.matrix_rank(p.H0))
        t_cg = np.inf
        for _ in range(reps if N <= 16 else 1):  # (N > 16: seconds, the noise is small)
            t0 = time.perf_counter()
            res = solve_column_generation(p)
            t_cg = min(t_cg, time.perf_counter() - t0)
        row = {"data": ds, "d": d, "bias": bias, "N": N, "seed": seed, "rank": rank,
               "objective": res.objective, "lower_bound": res.lower_bound,
               "rel_gap": res.gap / abs(res.objective), "certified": res.certified,
               "pricing": res.info["pricing"], "cells": res.info["n_patterns"],
               "rounds": res.info["iterations"], "width": res.network.widths[0],
               "cg_time": t_cg, "pe_objective": None, "pe_time": None, "speedup": None,
               "objective_diff": None, "cert_time": None, "pe_over_cert": None}
        t_cert, lb_cert = np.inf, -np.inf
        for _ in range(reps if N <= 16 else 1):
            t, lb_cert = certificate_time(p, res.network)
            t_cert = min(t_cert, t)
        row.update(cert_time=t_cert, cert_rel_gap=(res.objective - lb_cert) / abs(res.objective))
        if res.info["n_patterns"] <= cfg["pe_max_cells"]:
            try:
                t_pe = np.inf
                for _ in range(reps if N <= 16 else 1):
                    val, tb, ts, m = solve_pilanci_ergen(p)
                    t_pe = min(t_pe, tb + ts)
                row.update(pe_objective=val, pe_time=t_pe, speedup=t_pe / t_cg,
                           objective_diff=(res.objective - val) / abs(val),
                           pe_over_cert=t_pe / t_cert)
            except Exception as exc:  # the baseline failing is a measurement too
                row["pe_error"] = f"{type(exc).__name__}: {exc}"[:200]
        rows.append(row)
        print(f"  exact {ds} d={d} b={bias:g} N={N} s={seed} r={rank}: cg {t_cg:.2f} s gap "
              f"{row['rel_gap']:.1e} cert {res.certified}; PE {row['pe_time']}", flush=True)
    return rows


def run_multi(cfg):
    rows = []
    for k, d, bias, N, seed in cfg["multi"]:
        X, Y = data("gauss", N, d, k, seed)
        p = cd.Problem(X, Y, 2, LAM, bias=bias)
        t0 = time.perf_counter()
        res = solve_column_generation(p)
        t_cg = time.perf_counter() - t0
        ref, ref_kind = None, None
        if N <= 4:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ex = cd.solve(p, method="pattern")
            ref, ref_kind = ex.objective, "pattern N<=4"
        trained = _trained(p, cfg["train_starts"], seed)
        best = min(v for v in (ref, trained, res.objective) if v is not None)
        rows.append({"k": k, "d": d, "bias": bias, "N": N, "seed": seed,
                     "rank": int(np.linalg.matrix_rank(p.H0)), "objective": res.objective,
                     "lower_bound": res.lower_bound, "rel_gap": res.gap / abs(res.objective),
                     "certified": res.certified, "pricing": res.info["pricing"],
                     "reference": ref, "reference_kind": ref_kind, "trained": trained,
                     "bound_valid": bool(res.lower_bound <= best * (1 + 1e-7) + 1e-12),
                     "pricing_capped": bool(res.info.get("pricing_capped", False)),
                     "pricing_work": float(res.info.get("pricing_work", 0.0)),
                     "cg_time": t_cg})
        print(f"  multi k={k} d={d} N={N}: gap {rows[-1]['rel_gap']:.1e} valid "
              f"{rows[-1]['bound_valid']} {t_cg:.2f} s", flush=True)
    return rows


def run_losses(cfg):
    rows = []
    for loss, d, bias, N, seed in cfg["losses"]:
        X, Y = data("gauss", N, d, 1, seed, loss)
        p = cd.Problem(X, Y, 2, 0.01, loss=loss, bias=bias)
        t0 = time.perf_counter()
        res = solve_column_generation(p)
        t_cg = time.perf_counter() - t0
        trained = _trained(p, cfg["train_starts"], seed)
        rows.append({"loss": loss, "d": d, "bias": bias, "N": N, "seed": seed,
                     "rank": int(np.linalg.matrix_rank(p.H0)), "objective": res.objective,
                     "lower_bound": res.lower_bound, "rel_gap": res.gap / abs(res.objective),
                     "certified": res.certified, "trained": trained,
                     "bound_valid": bool(res.lower_bound <= trained * (1 + 1e-7) + 1e-12),
                     "cg_time": t_cg})
        print(f"  {loss} d={d} b={bias:g} N={N}: gap {rows[-1]['rel_gap']:.1e} cert "
              f"{res.certified} trained {trained:.6f} vs {res.objective:.6f}", flush=True)
    return rows


def run_auto(cfg):
    rows = []
    for k, d, bias, N, seed, loss in cfg["auto"]:
        X, Y = data("gauss", N, d, k, seed, loss)
        p = cd.Problem(X, Y, 2, LAM if loss == "mse" else 0.01, loss=loss, bias=bias)
        for method in ("auto", "column_generation", "pattern", "lifted"):
            if method == "pattern" and pattern_time_estimate(p) > 60:
                rows.append({"k": k, "d": d, "N": N, "loss": loss, "method": method,
                             "skipped": True})
                continue
            t = np.inf
            for _ in range(cfg.get("auto_repeats", 1)):  # the fastest of a few: load noise
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t0 = time.perf_counter()
                    res = cd.solve(p, method=method, force=True)
                    t = min(t, time.perf_counter() - t0)
            rows.append({"k": k, "d": d, "N": N, "loss": loss, "method": method,
                         "skipped": False,
                         "chosen": res.method, "certified": res.certified,
                         "objective": res.objective, "rel_gap": res.gap / abs(res.objective),
                         "time": t})
            print(f"  auto-grid {loss} k={k} d={d} N={N} {method}: cert {res.certified} "
                  f"{t:.2f} s",
                  flush=True)
    return rows


def summarise(exact, multi, losses, auto):
    out = {}
    r4 = [r for r in exact if r["rank"] <= 4]
    out["exact_rank_le4_certified"] = f"{sum(r['certified'] for r in r4)}/{len(r4)}"
    n32 = [r["cg_time"] for r in r4 if r["N"] == 32]
    out["median_time_N32_rank_le4"] = float(np.median(n32)) if n32 else None
    both = [r for r in exact if r["speedup"] is not None]
    out["pe_speedup_min"] = float(min(r["speedup"] for r in both)) if both else None
    out["pe_speedup_median"] = float(np.median([r["speedup"] for r in both])) if both else None
    out["pe_speedup_by_N"] = {
        str(N): {"min": float(min(r["speedup"] for r in both if r["N"] == N)),
                 "median": float(np.median([r["speedup"] for r in both if r["N"] == N])),
                 "instances": sum(r["N"] == N for r in both)}
        for N in sorted({r["N"] for r in both})}
    # the certificate alone (cell enumeration + one exact pricing + bound) at the returned
    # network: PE / that time bounds what any method certifying by exact pricing could reach
    out["pe_over_certificate_by_N"] = {
        str(N): {"min": float(min(r["pe_over_cert"] for r in both if r["N"] == N)),
                 "median": float(np.median([r["pe_over_cert"] for r in both if r["N"] == N]))}
        for N in sorted({r["N"] for r in both})}
    out["exact_certified"] = f"{sum(r['certified'] for r in exact)}/{len(exact)}"
    out["pe_max_abs_objective_diff"] = (float(max(abs(r["objective_diff"]) for r in both))
                                        if both else None)
    out["multi_bounds_valid"] = f"{sum(r['bound_valid'] for r in multi)}/{len(multi)}"
    out["multi_certified"] = f"{sum(r['certified'] for r in multi)}/{len(multi)}"
    gaps = np.array([r["rel_gap"] for r in multi])
    out["multi_gap_quantiles"] = ({q: float(np.quantile(gaps, q)) for q in (0.5, 0.9, 1.0)}
                                  if len(gaps) else None)
    times = [r["cg_time"] for r in multi]
    out["multi_time_median"] = float(np.median(times)) if times else None
    out["multi_time_max"] = float(max(times)) if times else None
    out["multi_capped"] = f"{sum(r['pricing'] == 'sphere_budget' for r in multi)}/{len(multi)}"
    out["losses_certified"] = f"{sum(r['certified'] for r in losses)}/{len(losses)}"
    out["losses_bounds_valid"] = f"{sum(r['bound_valid'] for r in losses)}/{len(losses)}"
    cells = {}
    for r in auto:
        if not r.get("skipped"):
            key = (r["k"], r["d"], r["N"], r.get("loss", "mse"))
            cells.setdefault(key, {})[r["method"]] = r
    per_method = {m: 0 for m in ("auto", "column_generation", "pattern", "lifted")}
    worst_ratio = 0.0
    for inst in cells.values():
        for m, r in inst.items():
            per_method[m] += bool(r["certified"])
        cert = [r["time"] for m, r in inst.items() if m != "auto" and r["certified"]]
        if cert and "auto" in inst:
            worst_ratio = max(worst_ratio, inst["auto"]["time"] / min(cert))
    out["auto_certified_per_method"] = per_method
    out["auto_worst_time_ratio"] = worst_ratio
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit code."""
    args = common.parse_args(__doc__.splitlines()[0], argv)
    cfg = config(args.quick)
    common.print_header(NAME, args)
    t_start = time.perf_counter()
    Xw, Yw = data("gauss", 6, 3, 1, 999)  # warm-up (imports, first cvxpy solve)
    solve_column_generation(cd.Problem(Xw, Yw, 2, LAM))
    solve_pilanci_ergen(cd.Problem(Xw, Yw, 2, LAM))
    exact, multi, losses, auto = run_exact(cfg), [], [], []

    def save():  # after every section: a stopped run keeps what it measured
        summary = summarise(exact, multi, losses, auto)
        path = common.write_results(NAME, args, cfg, exact, time.perf_counter() - t_start,
                                    {"summary": summary, "multi": multi, "losses": losses,
                                     "auto": auto})
        return summary, path

    save()
    multi = run_multi(cfg)
    save()
    losses = run_losses(cfg)
    save()
    auto = run_auto(cfg)
    summary, path = save()
    common.print_table("k = 1, squared loss: column generation vs Pilanci-Ergen", exact, [
        ("data", "data"), ("d", "d"), ("bias", "bias", "g"), ("N", "N"), ("rank", "r"),
        ("cells", "cells"), ("certified", "cert"), ("rel_gap", "rel.gap", ".1e"),
        ("cg_time", "t_cg", ".2f"), ("pe_time", "t_PE", ".2f"), ("speedup", "PE/cg", ".1f"),
        ("pe_over_cert", "PE/cert", ".1f"),
        ("objective_diff", "dF", ".1e")])
    print(summary)
    wall = time.perf_counter() - t_start
    print(f"\nwall time {wall:.1f} s; results written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
