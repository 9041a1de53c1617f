"""Write the README's performance table from ``benchmarks/results/*.json``.

Run after the benchmarks: ``python benchmarks/summarize.py`` replaces the block between
``<!-- benchmarks:start -->`` and ``<!-- benchmarks:end -->`` in the top-level README.md (and
prints it). Missing results files are listed as "not run".
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
START, END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"


def _load(name):
    path = ROOT / "results" / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _f(x, spec):
    return "-" if x is None or isinstance(x, str) else format(x, spec)


def _ttt(s, key):
    """A median time-to-target ratio, ``>x`` when censored runs make it a lower bound."""
    return s.get(f"{key}_str") or _f(s.get(key), ".1f")


def table() -> str:
    lines = ["| benchmark | measured (ratios in one process) | result |", "|---|---|---|"]
    tl = _load("two_layer")
    if tl:
        for key, label in (("N<=4", "N <= 4"), ("N>=6", "N >= 6")):
            s = tl["summary"].get(key)
            if not s:
                continue
            lines.append(
                f"| two_layer, {label} | time L-BFGS (5 starts) / ours; objective excess of "
                f"L-BFGS, of Adam at equal time | {_f(s.get('speed_ratio'), '.1f')}x; "
                f"{_f(s.get('lbfgs_excess'), '.1e')}, {_f(s.get('adam_eq_excess'), '.1e')}; "
                f"certified {s.get('certified')}/{s.get('instances')} |")
        tcfg = tl.get("config", {}).get("lbfgs_ttt")
        for key, label in (("N<=4", "N <= 4"), ("N<=4,d=2", "N <= 4, d = 2"),
                           ("N>=6", "N >= 6")):
            s = tl["summary"].get(key)
            if not tcfg or not s or s.get("speed_ratio_ttt") is None:
                continue  # results written before the time-to-target measurement
            lines.append(
                f"| two_layer, {label} | time-to-target: L-BFGS single starts until within "
                f"{tcfg['rtol']:g} (relative) of our objective (at most {tcfg['max_starts']}) "
                f"/ ours; / column generation (\">x\": a lower bound, censored runs); "
                f"instances where L-BFGS reached it | "
                f"{_ttt(s, 'speed_ratio_ttt')}x; {_ttt(s, 'speed_ratio_ttt_cg')}x; reached "
                f"{s.get('lbfgs_ttt_reached')}/{s.get('instances')} |")
        s = tl["summary"].get("N<=4,d=2")
        if s and s.get("speed_ratio_cg") is not None:
            lines.append(
                f"| two_layer, N <= 4, d = 2 | time L-BFGS (5 starts) / column generation; its "
                f"objective excess over the pattern solve | {_f(s['speed_ratio_cg'], '.1f')}x; "
                f"{_f(s.get('cg_excess'), '.1e')}; certified {s.get('cg_certified')}/"
                f"{s.get('instances')} |")
        s = tl["summary"].get("N<=4", {})
        lines.append(f"| two_layer, N <= 4 | cvxpy compilation share of our time | "
                     f"{_f(s.get('compile_share'), '.0%')} |")
        deficits = [r["lifted_bound_deficit"] for r in tl["rows"]
                    if isinstance(r.get("lifted_bound_deficit"), float)]
        if deficits:
            lines.append(f"| two_layer | pattern bound / lifted bound - 1 (median, max) | "
                         f"{_f(sorted(deficits)[len(deficits) // 2], '.1e')}, "
                         f"{_f(max(deficits), '.1e')} |")
    dp = _load("deep")
    if dp:
        s = dp["summary"]
        lines.append(
            f"| deep (depth 3/4, N = 4..10, {s['instances']} instances) | objective vs "
            f"best-of-10 L-BFGS: max, median relative excess; strictly below | "
            f"{_f(s['max_excess_vs_lbfgs'], '.1e')}, {_f(s['median_excess_vs_lbfgs'], '.1e')}; "
            f"{s['strictly_below']}/{s['instances'] - s['errors']} |")
        lines.append(
            f"| deep | every layer certified (tol 1e-3); median time / 10-start L-BFGS (same "
            f"process; / its own identical training); depth 3, N = 8 | "
            f"{s['all_layers_certified']}/{s['instances'] - s['errors']}; "
            f"{_f(s['median_time_ratio'], '.1f')}x "
            f"({_f(s['median_time_ratio_own_training'], '.1f')}x); "
            f"{_f(s['max_time_depth3_N8'], '.0f')} s |")
    sv = _load("solvers")
    if sv:
        s = sv["summary"]
        lines.append(
            f"| solvers | time SCS / Clarabel (median); lower bounds agree to | "
            f"{_f(s['median_time_ratio_scs_over_clarabel'], '.1f')}x; "
            f"{_f(s['max_abs_lb_rel_diff'], '.1e')} |")
    pr = _load("pruning")
    if pr:
        rows = [r for r in pr["rows"] if r["width"] == max(x["width"] for x in pr["rows"])]
        for r in rows:
            lines.append(
                f"| pruning, width {r['width']}, N = {r['N']}, d = {r['d']} | seconds; kept; "
                f"loss change; speed-up vs LP | {r['caratheodory_s']:.2f} s; "
                f"{r['caratheodory_width']}; {r['caratheodory_loss_change']:.0e}; "
                f"{r['speedup_vs_lp']:.0f}x |")
        tb = [r for r in pr["rows"] if r.get("textbook_s")]
        if tb:
            r = tb[0]
            lines.append(f"| pruning, width {r['width']} | speed-up vs textbook SVD elimination | "
                         f"{r['speedup_vs_textbook']:.0f}x |")
    rs = _load("resolve")
    if rs:
        worst = max(rs["rows"], key=lambda r: r["resolve_compile_share"])
        best = next((r for r in rs["rows"] if r["N"] == 4), rs["rows"][0])
        lines.append(
            f"| resolve (DPP) | first compile -> re-solve compile (N = {best['N']}); compile "
            f"share of re-solves, range over N | {best['first_compile_s'] * 1e3:.0f} ms -> "
            f"{best['resolve_compile_s'] * 1e3:.1f} ms; up to {worst['resolve_compile_share']:.0%}"
            f" (the solves take ~1 ms) |")
        path_rows = [r for r in rs["rows"] if "path_speedup" in r]
        if path_rows:
            sp = [r["path_speedup"] for r in path_rows]
            cs = [r["path_compile_share"] for r in path_rows]
            lines.append(
                f"| resolve: `solve_path` (10 lam) | time of one `solve` per lam / the path; "
                f"compile share of the path's re-solves (whole solve time), range over N | "
                f"{min(sp):.1f}-{max(sp):.1f}x; {min(cs):.0%}-{max(cs):.0%} |")
    sz = _load("size")
    if sz:
        s = sz["summary"]
        largest = ", ".join(f"{k}: N = {v}" for k, v in s["largest_N_within_budget"].items())
        lines.append(f"| size | largest N solved within {s['budget_s']:g} s (depth 2) | "
                     f"{largest} |")
    cg = _load("column_generation")
    if cg:
        rows = cg["rows"]
        ratios = [r["time_ratio"] for r in rows if isinstance(r.get("time_ratio"), float)]
        big = max(r["N"] for r in rows)
        t_big = max(r["cg_time"] for r in rows if r["N"] == big)
        cert = sum(bool(r["certified"]) for r in rows)
        lines.append(
            f"| column generation (depth 2, rank(H0) = 2) | certified; time pattern program / "
            f"ours where both run; largest N and its time | {cert}/{len(rows)}; "
            f"{_f(min(ratios), '.0f')}-{_f(max(ratios), '.0f')}x; N = {big} in "
            f"{t_big:.2f} s |" if ratios else f"| column generation | certified | "
            f"{cert}/{len(rows)} |")
        sp = cg.get("sparsity") or []
        if sp:
            widths = [r["width"] for r in sp if r["certified"]]
            n8 = [r["width"] for r in sp if r["certified"] and r["N"] == 8]
            nmax = max(r["N"] for r in sp)
            wmax = [r["width"] for r in sp if r["certified"] and r["N"] == nmax]
            lines.append(
                f"| sparsity of certified optima (column generation, real / teacher data, "
                f"rank(H0) = 2) | certified; width range; N = 8 (N^2/4 = 16); N = {nmax} "
                f"(N^2/4 = {nmax * nmax // 4}) | {len(widths)}/{len(sp)}; {min(widths)}-"
                f"{max(widths)}; <= {max(n8, default=0)}; <= {max(wmax, default=0)} |")
    pe = _load("pilanci_ergen")
    if pe:
        s = pe["summary"]
        by_n = s.get("pe_speedup_by_N") or {}
        per_n = ", ".join(f"N = {n}: {_f(v['min'], '.1f')}-{_f(v['median'], '.1f')}x"
                          for n, v in by_n.items())
        cert = s.get("pe_over_certificate_by_N") or {}
        per_c = ", ".join(f"N = {n}: {_f(v['min'], '.0f')}-{_f(v['median'], '.0f')}x"
                          for n, v in cert.items())
        lines.append(
            "| pilanci_ergen (depth 2, one output, squared loss, rank 3-5, N = 8..64) | "
            "certified; time Pilanci-Ergen program (cvxpy + Clarabel) / column generation "
            "where both finish (min-median per N); max objective difference"
            + ("; the program / the certificate alone (one exact pricing at the optimum: "
               "the limit for any method that certifies by exact pricing)" if per_c else "") + " | "
            f"{s.get('exact_certified', s.get('exact_rank_le4_certified'))}; "
            f"{per_n or _f(s.get('pe_speedup_median'), '.1f')}; "
            f"{_f(s.get('pe_max_abs_objective_diff'), '.1e')}"
            + (f"; {per_c}" if per_c else "") + " |")
        auto = s.get("auto_certified_per_method", {})
        multi = pe.get("multi") or []
        times = [r["cg_time"] for r in multi]
        q = s.get("multi_gap_quantiles") or {}
        gaps = "/".join(_f(q.get(k), ".0e") for k in ("0.5", "0.9", "1.0"))
        t_med = _f(statistics.median(times) if times else None, ".1f")
        t_max = _f(max(times, default=None), ".0f")
        lines.append(
            f"| pilanci_ergen: other losses; k > 1; `method=\"auto\"` | logistic / hinge / "
            f"Huber certified; k in {{2, 3}} certified, bounds valid, relative gap median / "
            f"90% / max, time median / max; auto grid: certified by "
            f"auto / column generation / pattern, worst time auto / fastest certifying | "
            f"{s.get('losses_certified')}; {s.get('multi_certified')}, "
            f"{s.get('multi_bounds_valid')}, {gaps}, {t_med} / {t_max} s; {auto.get('auto')} / "
            f"{auto.get('column_generation')} / {auto.get('pattern')}, "
            f"{_f(s.get('auto_worst_time_ratio'), '.2f')}x |")
    orr = _load("output_range")
    if orr:
        s = orr["summary"]
        r2 = s.get("time_ratio_full_over_reduced_C2", {})
        r3 = s.get("time_ratio_full_over_reduced_C3", {})
        lines.append(
            f"| output_range (depth 2, cross-entropy, 2 and 3 classes, rank 3, N = 12..32) | "
            f"certified, pricing on the dual's output range / over all k outputs; time all "
            f"outputs / output range, median (min-max), 2 classes; 3 classes | "
            f"{s['reduced']['certified']} / {s['full']['certified']}; "
            f"{_f(r2.get('median'), '.1f')}x ({_f(r2.get('min'), '.1f')}-"
            f"{_f(r2.get('max'), '.1f')}); {_f(r3.get('median'), '.1f')}x "
            f"({_f(r3.get('min'), '.1f')}-{_f(r3.get('max'), '.1f')}) |")
    missing = [n for n in ("two_layer", "deep", "solvers", "pruning", "size", "resolve")
               if not _load(n)]
    if missing:
        lines.append(f"| not run | {', '.join(missing)} | - |")
    return "\n".join(lines)


def main() -> int:
    text = table()
    readme = ROOT.parent / "README.md"
    src = readme.read_text()
    if START in src and END in src:
        a, b = src.index(START) + len(START), src.index(END)
        readme.write_text(src[:a] + "\n" + text + "\n" + src[b:])
        print(f"updated {readme}")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
