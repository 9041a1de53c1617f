"""False-certificate hunt: random depth-2 problems, every reported lower bound attacked.

For each random problem (N = 3..8, d = 1..4, k = 1..2, ReLU / absolute value / leaky ReLU(0.1),
bias 0 or a bias on the data's scale; X Gaussian times a scale 10^U(-3, 3), or uniform in
[10, 200] — the regime where false certificates were found; lam = lam_rel * scale with
lam_rel = 10^U(-5, -0.5)) the script runs ``conic_dnn.solve`` twice, with the defaults and
with ``polish=False``, and then searches for a network beating either reported lower bound:

* the two returned networks (each is a real network: its loss is an upper bound on the
  optimum, so it must not be below the *other* run's lower bound either);
* multi-start L-BFGS (``train_lbfgs``, width 2N, 2 starts, 2000 iterations).

A *violation* is a lower bound above the loss of any network found (beyond a rounding
allowance of 1e-12 relative); a *false certificate* is a violation of a certified result.
Both must be zero. Also recorded: how many results are certified, the largest relative gap
of the certified ones, and failures (exceptions).

Run: ``timeout 1800 python benchmarks/false_certificates.py`` (``--quick``: 6 problems).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from _common import parse_args, write_results

import conic_dnn as cd

ROUNDING = 1e-12


def random_problem(rng: np.random.Generator) -> tuple[cd.Problem, dict]:
    N, d, k = int(rng.integers(3, 9)), int(rng.integers(1, 5)), int(rng.integers(1, 3))
    if rng.random() < 1 / 3:
        X, scale = rng.uniform(10, 200, size=(N, d)), 100.0
    else:
        scale = float(10 ** rng.uniform(-3, 3))
        X = scale * rng.normal(size=(N, d))
    Y = rng.normal(size=(N, k))
    lam_rel = float(10 ** rng.uniform(-5, -0.5))
    act = str(rng.choice(["relu", "relu", "abs", "leaky"]))
    activation = cd.leaky_relu(0.1) if act == "leaky" else act
    bias = float(0.5 * scale) if rng.random() < 0.25 else 0.0
    lam = lam_rel * scale if bias == 0 else lam_rel * scale  # depth 2: lam scales like X
    p = cd.Problem(X, Y, 2, lam, activation=activation, bias=bias)
    return p, {"N": N, "d": d, "k": k, "scale": scale, "lam": lam, "lam_rel": lam_rel,
               "activation": act, "bias": bias}


def attack(p: cd.Problem, seed: int) -> float:
    """Lowest loss of a network found by multi-start L-BFGS."""
    tr = cd.train_lbfgs(p, 2 * p.N, n_starts=2, seed=seed, max_iter=2000)
    return float(tr.objective)


def run_one(p: cd.Problem, cfg: dict, seed: int) -> dict:
    row = dict(cfg)
    results = {}
    for mode, kw in (("default", {}), ("no_polish", {"polish": False})):
        t0 = time.perf_counter()
        try:
            res = cd.solve(p, **kw)
        except Exception as exc:  # recorded: valid inputs must not fail
            row[f"{mode}_error"] = f"{type(exc).__name__}: {exc}"[:300]
            continue
        results[mode] = res
        row[f"{mode}_objective"] = res.objective
        row[f"{mode}_lower_bound"] = res.lower_bound
        row[f"{mode}_certified"] = bool(res.certified)
        row[f"{mode}_time"] = time.perf_counter() - t0
        row[f"{mode}_bound_source"] = res.info.get("bound_source", "")
        row[f"{mode}_method"] = res.method
    found = [r.network.loss(p) for r in results.values()]
    found.append(attack(p, seed))
    best = min(found)
    row["best_found"] = best
    for mode, res in results.items():
        lb = res.lower_bound
        viol = bool(np.isfinite(lb) and best < lb - ROUNDING * max(abs(lb), 1e-300))
        row[f"{mode}_violation"] = viol
        row[f"{mode}_false_certificate"] = bool(viol and res.certified)
        row[f"{mode}_excess"] = float((lb - best) / abs(best)) if best != 0 else 0.0
    return row


def summarise(rows: list[dict]) -> dict:
    summary = {}
    for mode in ("default", "no_polish"):
        done = [r for r in rows if f"{mode}_objective" in r]
        cert = [r for r in done if r[f"{mode}_certified"]]
        gaps = [(r[f"{mode}_objective"] - r[f"{mode}_lower_bound"]) / abs(r[f"{mode}_objective"])
                for r in cert if r[f"{mode}_objective"] != 0]
        summary[mode] = {
            "problems": len(rows), "solved": len(done), "errors": len(rows) - len(done),
            "certified": len(cert),
            "finite_lower_bound": sum(np.isfinite(r[f"{mode}_lower_bound"]) for r in done),
            "violations": sum(r[f"{mode}_violation"] for r in done),
            "false_certificates": sum(r[f"{mode}_false_certificate"] for r in done),
            "max_certified_gap_rel": max(gaps, default=0.0),
            "max_excess_of_bound_over_found": max((r[f"{mode}_excess"] for r in done),
                                                  default=float("-inf")),
        }
    return summary


def main(argv=None) -> None:
    args = parse_args(__doc__.splitlines()[0], argv)
    n = 6 if args.quick else 300
    rng = np.random.default_rng(args.seed)
    rows, t0 = [], time.perf_counter()
    warnings.simplefilter("ignore")
    config = {"problems": n, "rounding_allowance": ROUNDING,
              "attack": "the two returned networks + train_lbfgs(width 2N, 2 starts, 2000 it)"}
    for i in range(n):
        p, cfg = random_problem(rng)
        cfg["index"] = i
        rows.append(run_one(p, cfg, seed=args.seed + i))
        if (i + 1) % 20 == 0:  # partial results survive an interrupted run
            write_results("false_certificates", args, {**config, "completed": i + 1}, rows,
                          time.perf_counter() - t0, extra={"summary": summarise(rows)})
            print(f"{i + 1}/{n} problems, {time.perf_counter() - t0:.0f} s", flush=True)
    wall = time.perf_counter() - t0
    summary = summarise(rows)
    print(f"{'mode':10s} {'solved':>7s} {'errors':>7s} {'certified':>10s} {'finite lb':>10s} "
          f"{'violations':>11s} {'false cert':>11s}")
    for mode, s in summary.items():
        print(f"{mode:10s} {s['solved']:7d} {s['errors']:7d} {s['certified']:10d} "
              f"{s['finite_lower_bound']:10d} {s['violations']:11d} {s['false_certificates']:11d}")
    print(f"wall time {wall:.0f} s")
    write_results("false_certificates", args, {**config, "completed": n}, rows, wall,
                  extra={"summary": summary})


if __name__ == "__main__":
    main()
