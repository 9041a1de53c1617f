"""Re-solves of one layer program: does DPP keep cvxpy's compilation off the critical path?

A two-layer program (``conic_dnn.cone.layer_program.LayerProgram``, ReLU, pattern representation)
is built once per N in {3, 4, 6, 8} (d = 2), then re-solved for 10 values of ``lam`` and 10 new
target
vectors ``Y`` (Parameters, so cvxpy reuses the compiled problem). Reported per N: the first
solve's compilation time, the median compilation and solver times of the re-solves, and the
compilation share of the re-solves (target of the performance issue: under 20 %).

SCS warm starts: the same program is solved with SCS along a regularisation path (8 values of
``lam``, 5 % apart) once cold (``warm_start=False``) and once warm (cvxpy hands SCS the previous
``x, y, s``); reported: total SCS iterations and solver time of each, and the largest relative
difference of the two paths' values.

User-level path: ``conic_dnn.solve_path`` (one compiled program for 10 values of ``lam``)
against one ``conic_dnn.solve`` per value; reported: the speed-up, the compilation share of the
path's re-solves measured against their whole solve time (decomposition and polish included),
and the largest relative difference of the objectives.

Run: ``python benchmarks/resolve.py [--quick]``.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

import conic_dnn as cd  # noqa: E402
from conic_dnn.cone.layer_program import LayerProgram  # noqa: E402

NAME = "resolve"


def main(argv=None) -> int:
    args = common.parse_args(__doc__.splitlines()[0], argv)
    common.print_header(NAME, args)
    t_start = time.perf_counter()
    Ns = [3, 4] if args.quick else [3, 4, 6, 8]
    n_resolves = 3 if args.quick else 10
    rows = []
    for N in Ns:
        X, Y = common.problem_data(N, 2, 1, args.seed)
        p = cd.Problem(X, Y, 2, 0.01)
        prog = LayerProgram(N, p.activation, last=True, loss=p.loss, k=1, H=p.H0)
        prog.set_data(p.lam, p.G0, Y=p.Y)
        first = prog.solve()
        rng = np.random.default_rng([args.seed, N])
        comp, solv, wall = [], [], []
        for i in range(n_resolves):
            lam = 10 ** rng.uniform(-3, -1)
            Yi = Y if i % 2 else rng.normal(size=Y.shape)
            prog.set_data(lam, p.G0, Y=Yi)
            t0 = time.perf_counter()
            info = prog.solve()
            wall.append(time.perf_counter() - t0)
            comp.append(info.compile_time)
            solv.append(info.solver_time)
        # the user-level path: solve_path (one program) against one solve per lam
        lams = np.geomspace(1e-3, 1e-1, n_resolves)
        t0 = time.perf_counter()
        path_res = cd.solve_path(p, lams)
        t_path = time.perf_counter() - t0
        t0 = time.perf_counter()
        indep = [cd.solve(p.replace(lam=float(v))) for v in lams]
        t_indep = time.perf_counter() - t0
        later = path_res[1:]
        share = sum(comp) / max(sum(comp) + sum(solv), 1e-300)
        scs = {}
        for warm in (False, True):
            prog.set_data(p.lam, p.G0, Y=Y)
            prog.solve("SCS", warm_start=False)
            its = tim = 0.0
            vals = []
            for i in range(8):
                prog.set_data(p.lam * (1 + 0.05 * (i + 1)), p.G0, Y=Y)
                inf = prog.solve("SCS", warm_start=warm, warn=False, accept_inaccurate=True)
                its += inf.iterations or 0
                tim += inf.solver_time
                vals.append(inf.value)
            scs[warm] = (its, tim, np.array(vals))
        rows.append({"N": N, "patterns": len(prog.cone.patterns),
                     "first_compile_s": first.compile_time, "first_solver_s": first.solver_time,
                     "resolve_compile_s": statistics.median(comp),
                     "resolve_solver_s": statistics.median(solv),
                     "resolve_compile_share": share,
                     "resolve_wall_s": statistics.median(wall),
                     "resolve_compile_share_of_wall": sum(comp) / max(sum(wall), 1e-300),
                     "path_s": t_path, "independent_s": t_indep,
                     "path_speedup": t_indep / max(t_path, 1e-300),
                     "path_compile_share": (sum(r.info["compile_time"] for r in later)
                                            / max(sum(r.solve_time for r in later), 1e-300)),
                     "path_certified": sum(r.certified for r in path_res),
                     "path_vs_independent": float(max(abs(a.objective / b.objective - 1)
                                                      for a, b in zip(path_res, indep))),
                     "scs_cold_iters": scs[False][0], "scs_warm_iters": scs[True][0],
                     "scs_cold_s": scs[False][1], "scs_warm_s": scs[True][1],
                     "scs_warm_speedup": scs[False][1] / max(scs[True][1], 1e-300),
                     "scs_path_value_diff": float(np.max(np.abs(scs[True][2] / scs[False][2]
                                                                - 1)))})
    common.print_table("one program, re-solved with new lam and Y (Parameters, DPP)", rows, [
        ("N", "N"), ("patterns", "patterns"), ("first_compile_s", "1st compile s", ".3f"),
        ("first_solver_s", "1st solver s", ".4f"), ("resolve_compile_s", "re compile s", ".4f"),
        ("resolve_solver_s", "re solver s", ".4f"),
        ("resolve_compile_share", "re compile share", ".0%"),
        ("resolve_wall_s", "re wall s", ".4f"),
        ("resolve_compile_share_of_wall", "compile/wall", ".0%"),
        ("path_speedup", "path speedup", ".1f"), ("path_compile_share", "path compile", ".0%"),
        ("path_vs_independent", "path-indep", ".0e"),
        ("scs_cold_iters", "SCS cold it", ".0f"), ("scs_warm_iters", "SCS warm it", ".0f"),
        ("scs_warm_speedup", "SCS cold/warm time", ".2f"),
        ("scs_path_value_diff", "warm-cold value diff", ".1e")])
    summary = {"max_resolve_compile_share": max(r["resolve_compile_share"] for r in rows),
               "scs_warm_speedup": {r["N"]: r["scs_warm_speedup"] for r in rows},
               "target_20pct_met": all(r["resolve_compile_share"] < 0.2 for r in rows),
               "max_path_compile_share": max(r["path_compile_share"] for r in rows),
               "path_speedup": {r["N"]: r["path_speedup"] for r in rows}}
    path = common.write_results(NAME, args, {"Ns": Ns, "n_resolves": n_resolves}, rows,
                                time.perf_counter() - t_start, {"summary": summary})
    print(f"\nsummary: {summary}\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
