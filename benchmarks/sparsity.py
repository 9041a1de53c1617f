"""Sparsity on ordinary data: far fewer than N(N+1) (or even N^2/4) neurons are needed.

The paper bounds the width a global minimum needs by N(N+1) (Caratheodory on the covariance
cone) and shows that N^2/4 can be needed (``conic_dnn.tight_example``). This script checks how
many neurons trained networks need on ordinary data. Data sets (scikit-learn, no download):

* ``digits``: ``load_digits`` classes 7/8/9, pixels scaled to [0, 1], one-hot targets;
* ``moons``: ``make_moons(noise=0.1)``, +-1 targets;
* ``iris``: ``load_iris`` versicolor vs virginica, standardised features, +-1 targets;
* ``teacher``: Gaussian inputs (d = 5) labelled by a fixed random depth-2 ReLU teacher of
  width 3 (no bias).

For N in {8, 16, 32, 64} (quick: N = 8, moons and teacher only) the first N samples of a seeded
shuffle are fitted by a wide ReLU network (depth 2: width 128; depth 3: widths 64/64;
``lam = 1e-3``; bias 1.0 except for the teacher; MSE) with ``conic_dnn.train_lbfgs``, then
``conic_dnn.sparsity_report`` prunes every hidden layer (Caratheodory and LP). Recorded per
(data set, N, depth, layer): width, generator rank, both pruned widths, N(N+1), N^2/4, losses
before / after pruning and the relative change of the loss by pruning, measured against the
activation loss of the trained network (which pruning preserves; <= ~1e-9 expected; recorded,
not asserted).

"Neurons needed" is the smaller of the two pruned widths (largest over the hidden layers):
``exact`` at the library's default rank tolerance (rtol 1e-10), ``approx`` the smallest width
over the rank tolerances ``RTOLS`` whose pruning changes the activation loss by at most
``LOSS_TOL`` = 1e-6. Caveats: L-BFGS leaves a tail of tiny neurons, so the generator family is
numerically of slowly decaying rank and the exact pruning often cannot remove anything
(``saturated``: pruned width = trained width; ``pruned_above_rank``: it kept more neurons than
the generator rank). The trained widths (64, 128) cap every figure, so for N >= 32, where
N^2/4 >= 256, "below N^2/4" is implied by the width and is no evidence by itself. The plot
``results/sparsity.png`` shows both figures against N, with the curves N(N+1) and N^2/4.

Exact source (``exact_rows`` in the JSON). The L-BFGS networks above stop at generic points
whose generator family has nearly full dimension, so their pruned widths say little about what a
*global* optimum needs. For small N the depth-2 problem is solved to its global optimum with
``conic_dnn.solve(problem, method="pattern")`` (moons d = 2 and iris d = 4 with bias 1;
``teacher2`` / ``teacher3``: Gaussian inputs, d = 2 / 3, no bias, labelled by a fixed random
width-3 ReLU teacher), several seeds (subsets) and ``lam`` in ``EXACT_LAMS``; the returned
network is pruned with ``conic_dnn.prune`` (Caratheodory and LP, through ``sparsity_report``).
Recorded per instance: objective, program value, relative gap, ``certified``, status, width
returned, generator rank, both pruned widths, N(N+1), N^2/4, the relative loss change from
pruning, and ``plateau_width``: the smallest width in ``PLATEAU_WIDTHS`` at which multi-start
L-BFGS (``PLATEAU_LBFGS``) reaches the certified optimum to ``PLATEAU_TOL`` (relative) -- an
independent upper bound on the neurons a global optimum needs (only for certified rows). The
pattern program is exact only for N <= 4; beyond, a row is a global optimum only when
``certified`` (the network's loss matches the relaxation's value). Depth 3 (alternating
solver) is not run: one instance at N = 8 took 135-146 s (> the 2-minute budget).

Run: ``python benchmarks/sparsity.py [--quick] [--jobs N] [--scheduler ADDRESS]``. The
trained networks (one task per data set, N, depth) and the exact solves (one per data set, N,
seed, lam) are independent runs, distributed by ``joblib``: ``--jobs N`` local processes (loky;
default -1 = all cores, 1 with ``--quick``), or, with ``--scheduler ADDRESS``, the workers of a
Dask cluster (optional extra ``distributed``). Rows and printed lines keep the sequential order.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from pathlib import Path

import joblib
import numpy as np
from joblib import Parallel, delayed
from threadpoolctl import threadpool_info, threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

import conic_dnn as cd  # noqa: E402

NAME = "sparsity"
LAM = 1e-3
WIDTHS = {2: [128], 3: [64, 64]}
METHODS = ("caratheodory", "lp")
#: rank tolerances of the pruning; the first is the library default (exact pruning)
RTOLS = (1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5)
#: relative change of the activation loss accepted by the approximate pruning
LOSS_TOL = 1e-6
#: lam of the exact (global) solves: both give non-zero networks on every instance
EXACT_LAMS = (1e-2, 1e-3)
#: widths tried by the plateau search (multi-start L-BFGS against the certified optimum)
PLATEAU_WIDTHS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64)
PLATEAU_TOL = 1e-6
PLATEAU_LBFGS = {"n_starts": 5, "max_iter": 3000}


def load(name: str, N: int, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """The first ``N`` samples (seeded shuffle) of a data set: ``X``, ``Y`` and the bias."""
    from sklearn.datasets import load_digits, load_iris, make_moons

    rng = np.random.default_rng([seed, N, sum(map(ord, name))])
    if name == "teacher":
        teacher = np.random.default_rng([seed, 12345])  # fixed across N
        W1, W2 = teacher.normal(size=(3, 5)), teacher.normal(size=(1, 3))
        X = rng.normal(size=(N, 5))
        return X, np.maximum(X @ W1.T, 0.0) @ W2.T, 0.0
    if name in ("teacher2", "teacher3"):
        d = int(name[-1])
        teacher = np.random.default_rng([seed, 12345, d])  # fixed across N
        W1, W2 = teacher.normal(size=(3, d)), teacher.normal(size=(1, 3))
        X = rng.normal(size=(N, d))
        return X, np.maximum(X @ W1.T, 0.0) @ W2.T, 0.0
    if name == "moons":
        X, y = make_moons(n_samples=max(N, 100), noise=0.1, random_state=seed)
        Y = (2.0 * y - 1.0)[:, None]
    elif name == "iris":
        X, y = load_iris(return_X_y=True)
        keep = y > 0
        X, y = X[keep], y[keep]
        X = (X - X.mean(axis=0)) / X.std(axis=0)
        Y = np.where(y == 2, 1.0, -1.0)[:, None]
    elif name == "digits":
        X, y = load_digits(return_X_y=True)
        keep = y >= 7
        X, y = X[keep] / 16.0, y[keep]
        Y = np.eye(3)[y - 7]
    else:
        raise ValueError(name)
    idx = rng.permutation(len(X))[:N]
    return X[idx], Y[idx], 1.0


def config(quick: bool) -> dict:
    """Grid and training settings."""
    # exact grid: (data set, N, lams, seeds); sizes chosen from measured solve times (< 60 s)
    if quick:
        return {"datasets": ["moons", "teacher"], "Ns": [8], "depths": [2, 3],
                "widths": WIDTHS, "lam": LAM, "lbfgs": {"n_starts": 1, "max_iter": 300},
                "exact": [("teacher2", 6, [1e-2], [0])], "plateau": False}
    seeds3, seeds1 = [0, 1, 2], [0]
    exact = [("moons", 8, list(EXACT_LAMS), seeds3), ("iris", 8, list(EXACT_LAMS), seeds3),
             ("teacher2", 8, list(EXACT_LAMS), seeds3), ("teacher3", 8, list(EXACT_LAMS), seeds3),
             ("teacher2", 12, [1e-3], seeds3), ("teacher3", 12, [1e-3], seeds3),
             ("moons", 12, [1e-2], seeds1), ("moons", 16, [1e-2], seeds1),
             ("moons", 20, [1e-2], seeds1), ("teacher2", 16, [1e-3], seeds1),
             ("teacher2", 20, [1e-3], seeds1)]
    return {"datasets": ["digits", "moons", "iris", "teacher"], "Ns": [8, 16, 32, 64],
            "depths": [2, 3], "widths": WIDTHS, "lam": LAM,
            "lbfgs": {"n_starts": 2, "max_iter": 2000}, "exact": exact, "plateau": True,
            "exact_skipped": {"iris, N >= 12": "pattern program > 120 s (N = 12, lam 1e-2)",
                              "depth 3, N = 8": "solve took 135 s (moons) and 146 s "
                                                "(teacher, d = 3) > 120 s"}}


def plateau_width(p, target: float) -> tuple[int | None, float | None]:
    """Smallest width in PLATEAU_WIDTHS at which multi-start L-BFGS reaches ``target`` to
    PLATEAU_TOL (relative), and its objective; (None, None) if no width does."""
    for m in PLATEAU_WIDTHS:
        if m > p.N * (p.N + 1):
            break
        tr = cd.train_lbfgs(p, [m], seed=0, **PLATEAU_LBFGS)
        if tr.objective <= target * (1 + PLATEAU_TOL):
            return m, float(tr.objective)
    return None, None


def exact_unit(ds: str, N: int, seed: int, lam: float, plateau: bool) -> tuple[dict, str]:
    """One global depth-2 solve (pattern program), pruned: its row and its progress line."""
    import warnings

    X, Y, bias = load(ds, N, seed)
    p = cd.Problem(X, Y, 2, lam, activation="relu", bias=bias)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # inaccurate solves: recorded in status
        res = cd.solve(p, method="pattern")
    t_solve = time.perf_counter() - t0
    net = res.network
    width = net.widths[0]
    with threadpool_limits(1, user_api="blas"):
        rep = cd.sparsity_report(p, net)
    lay = rep.layers[0]
    value = float(res.info["program_value"])
    loss = rep.loss
    row = {
        "dataset": ds, "N": N, "d": X.shape[1], "k": Y.shape[1], "bias": bias,
        "seed": seed, "lam": lam, "depth": 2, "objective": res.objective,
        "program_value": value, "lower_bound": res.lower_bound,
        "rel_gap": (res.objective - value) / abs(res.objective),
        "certified": res.certified, "status": res.status, "solver": res.solver,
        "n_patterns": res.info.get("n_patterns"),
        "neurons_recovered": res.info.get("neurons_recovered"),
        "width": width, "nonzero": width > 0, "rank": lay.rank,
        "pruned_caratheodory": lay.pruned_caratheodory, "pruned_lp": lay.pruned_lp,
        "needed": min(lay.pruned_caratheodory, lay.pruned_lp),
        "caratheodory_bound": N * (N + 1), "tight_bound": N * N / 4,
        "loss": loss, "loss_caratheodory": rep.loss_caratheodory,
        "loss_lp": rep.loss_lp,
        "loss_change_caratheodory": abs(rep.loss_caratheodory / loss - 1),
        "loss_change_lp": abs(rep.loss_lp / loss - 1),
        "solve_s": t_solve}
    row["below_tight_bound"] = row["needed"] < row["tight_bound"]
    t0 = time.perf_counter()
    if plateau and res.certified:
        m, f = plateau_width(p, res.objective)
    else:
        m, f = None, None
    row.update({"plateau_width": m, "plateau_objective": f,
                "plateau_s": time.perf_counter() - t0})
    line = (f"exact {ds:8s} N={N:2d} d={X.shape[1]} seed {seed} lam {lam:g}: solve "
            f"{t_solve:5.1f} s, {res.status}, cert {res.certified}, gap "
            f"{row['rel_gap']:.1e}, width {width}, rank {lay.rank}, pruned "
            f"{lay.pruned_caratheodory}/{lay.pruned_lp}, plateau {m} "
            f"(N^2/4 = {N * N / 4:g})")
    return row, line


def blas_threads() -> int:
    """BLAS threads of this process (the most over its BLAS libraries; 1 if none)."""
    return max((i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"),
               default=1)


def in_unit(fn, blas: int, *args):
    """``fn(*args)`` with ``blas`` BLAS threads: the results of the cone solves depend on the
    BLAS thread count (measured: 9 of the 35 exact rows changed when loky's workers ran with
    1 thread instead of the main process's 2), so every unit runs with the main process's."""
    with threadpool_limits(blas, user_api="blas"):
        return fn(*args)


def run_parallel(fn, tasks: list[tuple], jobs: int) -> list:
    """``[fn(*t) for t in tasks]`` through joblib (in order), each with this process's BLAS
    threads; prints each unit's line once all are done (deterministic output) and returns the
    first elements (the results)."""
    blas = blas_threads()
    out = Parallel(n_jobs=jobs)(delayed(in_unit)(fn, blas, *t) for t in tasks)
    for _, line in out:
        print(line, flush=True)
    return [res for res, _ in out]


def run_exact(cfg: dict, jobs: int = 1) -> list[dict]:
    """Global depth-2 solves (pattern program), pruned; one row per instance, one joblib task
    per (data set, N, seed, lam)."""
    tasks = [(ds, N, seed, lam, bool(cfg.get("plateau")))
             for ds, N, lams, seeds in cfg["exact"] for seed in seeds for lam in lams]
    return run_parallel(exact_unit, tasks, jobs)


def plot(rows: list[dict], path: Path, exact_rows: list[dict] | None = None) -> None:
    """Neurons needed after pruning vs N (log-log) against N(N+1) and N^2/4: exact pruning
    (left) and pruning with a relative loss change <= LOSS_TOL (right). The global optima
    (``exact_rows``) are drawn in both panels: red stars (pruned width, certified), red
    crosses (not certified), blue triangles (plateau width of certified rows)."""
    exact_rows = exact_rows or []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    Ns = np.array(sorted({r["N"] for r in rows} | {r["N"] for r in exact_rows}),
                  dtype=float)
    grid = np.geomspace(Ns.min(), Ns.max(), 50)
    styles = {2: "o-", 3: "s--"}
    for ax, key, title in ((axes[0], "needed", "exact pruning (rtol 1e-10)"),
                           (axes[1], "needed_approx",
                            f"pruning with loss change <= {LOSS_TOL:g}")):
        curves: dict = {}
        for r in rows:
            pts = curves.setdefault((r["dataset"], r["depth"]), {})
            pts[r["N"]] = max(pts.get(r["N"], 0), r[key])
        for (ds, depth), pts in sorted(curves.items()):
            xs = sorted(pts)
            ax.plot(xs, [max(pts[n], 0.8) for n in xs], styles[depth],
                    label=f"{ds}, depth {depth}")
        jit = {0: 0.97, 1: 1.0, 2: 1.03}
        for cert, mk, lab in ((True, "r*", "global opt. (certified), pruned"),
                              (False, "rx", "depth-2 solve, not certified, pruned")):
            sel = [r for r in exact_rows if bool(r["certified"]) == cert]
            if sel:
                ax.plot([r["N"] * jit.get(r["seed"], 1.0) for r in sel],
                        [max(r["needed"], 0.8) for r in sel], mk, ms=9, label=lab)
        sel = [r for r in exact_rows if r.get("plateau_width")]
        if sel:
            ax.plot([r["N"] * jit.get(r["seed"], 1.0) for r in sel],
                    [r["plateau_width"] for r in sel], "b^", ms=6, mfc="none",
                    label="smallest width reaching the optimum")
        ax.plot(grid, grid * (grid + 1), "k-", lw=2, label="N(N+1)")
        ax.plot(grid, grid ** 2 / 4, "k:", lw=2, label="N^2/4")
        for ws in WIDTHS.values():
            ax.axhline(max(ws), color="grey", lw=0.8, alpha=0.6)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("N (training samples)")
        ax.set_title(title, fontsize=10)
    axes[0].set_ylabel("neurons after pruning (largest hidden layer)")
    axes[1].legend(fontsize=6, ncol=2)
    fig.suptitle(f"ReLU; lines: L-BFGS (lam = {LAM:g}), grey: trained widths 64 and 128; "
                 f"markers: depth-2 global solves (lam 1e-2 / 1e-3), depth 2", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def train_unit(ds: str, N: int, depth: int, seed: int, lbfgs: dict) -> tuple[list, str]:
    """One trained network (data set, N, depth): L-BFGS, then the sparsity reports at every
    rank tolerance; its rows (one per hidden layer) and its progress line."""
    X, Y, bias = load(ds, N, seed)
    rows = []
    p = cd.Problem(X, Y, depth, LAM, activation="relu", bias=bias)
    t0 = time.perf_counter()
    tr = cd.train_lbfgs(p, WIDTHS[depth], seed=seed, **lbfgs)
    t_train = time.perf_counter() - t0
    W = list(tr.network.weights)
    act_loss = cd.loss_activations(p, cd.activations_from_weights(p, W))
    t0 = time.perf_counter()
    with threadpool_limits(1, user_api="blas"):  # small matrices: 1 thread is faster
        reps = {rtol: cd.sparsity_report(p, tr.network, rtol=rtol) for rtol in RTOLS}
    t_report = time.perf_counter() - t0
    rep = reps[RTOLS[0]]  # the library default: exact pruning
    change = {(rtol, m): abs(getattr(r, f"loss_{m}") / act_loss - 1)
              for rtol, r in reps.items() for m in METHODS}
    # approximate pruning: among the (rtol, method) changing the activation loss
    # by at most LOSS_TOL, the smallest largest layer (then the fewest neurons)
    ok = [(max(ws), sum(ws), rtol, m) for rtol, r in reps.items() for m in METHODS
          if change[rtol, m] <= LOSS_TOL
          for ws in [[getattr(x, f"pruned_{m}") for x in r.layers]]]
    *_, a_rtol, a_m = min(ok) if ok else (0, 0, RTOLS[0], METHODS[0])
    Zs = cd.activations_from_weights(p, W)
    for lay, a_lay in zip(rep.layers, reps[a_rtol].layers):
        Z = Zs[lay.layer - 1]
        on = Z[:, np.abs(Z).max(axis=0) > 0] > 0
        needed = min(lay.pruned_caratheodory, lay.pruned_lp)
        rows.append({
            "dataset": ds, "N": N, "d": X.shape[1], "k": Y.shape[1], "bias": bias,
            "depth": depth, "layer": lay.layer, "width": lay.width,
            "active": lay.active, "rank": lay.rank,
            "patterns": int(np.unique(on, axis=1).shape[1]) if on.size else 0,
            "pruned_caratheodory": lay.pruned_caratheodory,
            "pruned_lp": lay.pruned_lp, "needed": needed,
            "saturated": needed >= lay.width,
            "pruned_above_rank": needed > lay.rank,
            "caratheodory_bound": lay.caratheodory_bound,
            "tight_bound": lay.tight_bound,
            "objective": tr.objective, "lbfgs_message": tr.message,
            "loss": rep.loss, "activation_loss": act_loss,
            "loss_caratheodory": rep.loss_caratheodory, "loss_lp": rep.loss_lp,
            "loss_change_caratheodory": change[RTOLS[0], "caratheodory"],
            "loss_change_lp": change[RTOLS[0], "lp"],
            "needed_approx": getattr(a_lay, f"pruned_{a_m}"),
            "approx_rtol": a_rtol, "approx_method": a_m,
            "approx_loss_change": change[a_rtol, a_m],
            "rtol_ladder": {f"{rtol:g}": {
                "pruned_caratheodory": r.layers[lay.layer - 1].pruned_caratheodory,
                "pruned_lp": r.layers[lay.layer - 1].pruned_lp,
                "loss_change_caratheodory": change[rtol, "caratheodory"],
                "loss_change_lp": change[rtol, "lp"]} for rtol, r in reps.items()},
            "train_s": t_train, "report_s": t_report})
    line = (f"{ds:8s} N={N:3d} depth {depth}: train {t_train:6.2f} s, reports "
            f"{t_report:5.2f} s, exact {[r['needed'] for r in rows]}, "
            f"approx {[r['needed_approx'] for r in rows]} "
            f"(rtol {a_rtol:g}, {a_m})")
    return rows, line


SCHEDULER_MISSING = ("--scheduler needs the optional extra 'distributed' "
                     "(pip install 'conic-dnn[distributed]')")


def parse_args(argv=None) -> argparse.Namespace:
    """The common options (``_common.parse_args``) plus ``--jobs`` and ``--scheduler``."""
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--jobs", type=int, default=None)
    extra.add_argument("--scheduler", default=None)
    ns, rest = extra.parse_known_args(argv)
    description = (__doc__.splitlines()[0] + " Also: --jobs N (parallel runs through joblib; "
                   "default -1 = all cores, 1 with --quick), --scheduler ADDRESS (run them on "
                   "a Dask cluster; optional extra 'distributed').")
    args = common.parse_args(description, rest)
    args.jobs = ns.jobs if ns.jobs is not None else (1 if args.quick else -1)
    args.scheduler = ns.scheduler
    return args


def backend(scheduler: str | None):
    """joblib's backend context: loky (local processes, the default) or a Dask cluster."""
    if scheduler is None:
        return contextlib.nullcontext()
    from dask.distributed import Client

    client = Client(scheduler)
    stack = contextlib.ExitStack()
    stack.enter_context(client)
    stack.enter_context(joblib.parallel_backend("dask"))
    return stack


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.scheduler is not None:
        try:
            import dask.distributed  # noqa: F401
        except ImportError:
            print(SCHEDULER_MISSING, file=sys.stderr)
            return 2
    try:
        ctx = backend(args.scheduler)
    except OSError as err:  # no scheduler at that address
        print(f"--scheduler {args.scheduler}: cannot connect ({err})", file=sys.stderr)
        return 2
    common.print_header(NAME, args)
    with ctx:
        return run(args)


def run(args: argparse.Namespace) -> int:
    t_start = time.perf_counter()
    cfg = config(args.quick)
    cfg.update({"jobs": args.jobs, "n_workers": joblib.effective_n_jobs(args.jobs),
                "backend": "loky" if args.scheduler is None else "dask",
                "blas_threads": blas_threads()})
    print(f"jobs {args.jobs} ({cfg['n_workers']} workers, {cfg['backend']}), "
          f"{cfg['blas_threads']} BLAS threads per run", flush=True)
    tasks = [(ds, N, depth, args.seed, cfg["lbfgs"])
             for ds in cfg["datasets"] for N in cfg["Ns"] for depth in cfg["depths"]]
    rows = [r for unit in run_parallel(train_unit, tasks, args.jobs) for r in unit]
    t_exact = time.perf_counter()
    exact_rows = run_exact(cfg, args.jobs)
    t_exact = time.perf_counter() - t_exact
    wall = time.perf_counter() - t_start
    common.print_table("per hidden layer (exact: rtol 1e-10; approx: loss change <= 1e-6)",
                       rows, [
        ("dataset", "data"), ("N", "N"), ("depth", "L"), ("layer", "l"), ("width", "width"),
        ("patterns", "patt."), ("rank", "rank"), ("pruned_caratheodory", "carath."),
        ("pruned_lp", "LP"), ("needed_approx", "approx"), ("approx_rtol", "at rtol", "g"),
        ("caratheodory_bound", "N(N+1)"), ("tight_bound", "N^2/4", "g"),
        ("loss", "loss", ".4g"), ("loss_change_caratheodory", "dloss car.", ".1e"),
        ("loss_change_lp", "dloss LP", ".1e"), ("approx_loss_change", "dloss approx", ".1e")])
    headline = []
    for ds in cfg["datasets"]:
        for N in cfg["Ns"]:
            h = {"dataset": ds, "N": N, "N(N+1)": N * (N + 1), "N^2/4": N * N / 4}
            for depth in cfg["depths"]:
                sel = [r for r in rows if (r["dataset"], r["N"], r["depth"]) == (ds, N, depth)]
                h[f"rank_depth{depth}"] = max(r["rank"] for r in sel)
                h[f"exact_depth{depth}"] = max(r["needed"] for r in sel)
                h[f"approx_depth{depth}"] = max(r["needed_approx"] for r in sel)
                h[f"trained_width_depth{depth}"] = max(r["width"] for r in sel)
            h["approx_over_N2_4"] = max(h[f"approx_depth{d}"] for d in cfg["depths"]) / h["N^2/4"]
            headline.append(h)
    common.print_table("headline: neurons needed (largest hidden layer) vs the bounds", headline,
                       [("dataset", "data"), ("N", "N")]
                       + [(f"{kind}_depth{d}", f"{kind} L={d}")
                          for d in cfg["depths"] for kind in ("rank", "exact", "approx")]
                       + [("N(N+1)", "N(N+1)"), ("N^2/4", "N^2/4", "g"),
                          ("approx_over_N2_4", "approx/(N^2/4)", ".2f")])
    max_change = max(max(r["loss_change_caratheodory"], r["loss_change_lp"]) for r in rows)
    summary = {"max_relative_loss_change_exact": max_change,
               "exact_loss_change_below_1e-9": bool(max_change <= 1e-9),
               "n_layers": len(rows),
               "n_layers_exact_saturated": sum(r["saturated"] for r in rows),
               "n_layers_exact_above_rank": sum(r["pruned_above_rank"] for r in rows),
               "max_relative_loss_change_approx": max(r["approx_loss_change"] for r in rows),
               "approx_all_below_tight_bound": all(r["needed_approx"] < r["tight_bound"]
                                                   for r in rows),
               "approx_below_tight_bound_for_N_ge_16": all(
                   r["needed_approx"] < r["tight_bound"] for r in rows if r["N"] >= 16)}
    common.print_table(
        "exact source: depth-2 global solve (pattern program), pruned (needed = min(carath., LP))",
        exact_rows, [
            ("dataset", "data"), ("N", "N"), ("d", "d"), ("seed", "seed"), ("lam", "lam", "g"),
            ("objective", "objective", ".6g"), ("rel_gap", "rel.gap", ".1e"),
            ("certified", "cert"), ("status", "status"), ("width", "width"),
            ("rank", "rank"), ("pruned_caratheodory", "carath."), ("pruned_lp", "LP"),
            ("plateau_width", "plateau"), ("tight_bound", "N^2/4", "g"),
            ("caratheodory_bound", "N(N+1)"), ("loss_change_caratheodory", "dloss car.", ".1e"),
            ("loss_change_lp", "dloss LP", ".1e"), ("solve_s", "solve s", ".1f")])
    cert = [r for r in exact_rows if r["certified"]]
    summary["exact"] = {
        "n_instances": len(exact_rows), "n_certified": len(cert),
        "n_zero_network": sum(not r["nonzero"] for r in exact_rows),
        "n_certified_below_tight_bound": sum(r["below_tight_bound"] for r in cert),
        "n_below_tight_bound": sum(r["below_tight_bound"] for r in exact_rows),
        "n_certified_plateau_below_tight_bound": sum(
            r["plateau_width"] is not None and r["plateau_width"] < r["tight_bound"]
            for r in cert),
        "max_relative_loss_change": max((max(r["loss_change_caratheodory"],
                                             r["loss_change_lp"]) for r in exact_rows),
                                        default=None),
        "seconds": t_exact}
    path = common.write_results(NAME, args, cfg, rows, wall,
                                {"summary": summary, "headline": headline,
                                 "exact_rows": exact_rows})
    out_dir = args.out if args.out is not None else common.RESULTS_DIR
    png = out_dir / (f"{NAME}_quick.png" if args.quick else f"{NAME}.png")
    plot(rows, png, exact_rows)
    print(f"\nsummary: {summary}\nwrote {path}\nwrote {png}\nwall time {wall:.1f} s")
    return 0


def _stop_workers_on_sigterm() -> None:
    """SIGTERM ends the run like Ctrl-C: the interpreter exits normally and the loky worker
    processes are killed with it (by default SIGTERM kills only this process and leaves its
    workers running)."""
    def stop(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def _kill_workers() -> None:
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=False, kill_workers=True)


if __name__ == "__main__":
    _stop_workers_on_sigterm()
    try:
        sys.exit(main())
    finally:
        _kill_workers()
