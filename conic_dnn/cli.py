"""The ``conic-dnn`` command line.

Commands
--------
demo
    The main job on built-in data: a two-layer ReLU instance solved to a certified global
    optimum, a depth-3 instance solved layer by layer with per-layer certificates, and the
    neurons found against the N(N+1) bound.
solve DATA --depth L --lam LAM
    Solve a problem from ``.npz`` (arrays ``X``, ``Y``) or ``.csv`` (last ``--targets``
    columns are ``Y``); writes ``result.json`` and ``network.npz`` to ``--out``.
prune NETWORK.npz DATA
    Caratheodory / LP pruning; prints the sparsity report, writes the pruned network.
certify NETWORK.npz DATA
    Per-layer certificates; exit code 0 when every layer is certified, 1 otherwise.
path DATA --lams 1e-3,1e-2,1e-1
    A depth-2 regularisation path through one compiled cone program
    (:func:`conic_dnn.solve_path`): objective, lower bound, gap, certificate and width per
    ``lam``.

Every command takes ``--json`` (machine-readable output) and ``--quiet``. Bad input gives one
line on stderr and exit code 2.

May import: anything in conic_dnn (the CLI is the outermost layer).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

__all__ = ["main", "load_data"]


#: Tolerance of the certificates printed by ``demo`` and the default of ``certify --tol``:
#: margins are first-order quantities, ~sqrt of the loss accuracy of a cone solve (1e-8).
CERT_TOL = 1e-3


class CLIError(Exception):
    """A user error: reported as one line, exit code 2."""


def load_data(path, targets: int = 1):
    """Read ``X`` and ``Y`` from an ``.npz`` (arrays ``X``, ``Y``) or a ``.csv`` file (the last
    ``targets`` columns are ``Y``; a header line is skipped if it is not numeric)."""
    path = Path(path)
    if not path.exists():
        raise CLIError(f"data file not found: {path}")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ("X", "Y") if k not in f.files]
            if missing:
                raise CLIError(f"{path}: expected arrays X and Y in the npz file, got "
                               f"{', '.join(f.files) or 'none'}")
            return np.array(f["X"]), np.array(f["Y"])
    if path.suffix == ".csv":
        if targets < 1:
            raise CLIError(f"--targets: expected a positive integer, got {targets}")
        try:
            data = np.genfromtxt(path, delimiter=",", dtype=float)
            if data.ndim == 2 and np.all(np.isnan(data[0])):
                data = data[1:]
        except ValueError as exc:
            raise CLIError(f"{path}: could not read a numeric CSV ({exc})") from None
        if data.ndim != 2 or data.shape[1] <= targets:
            raise CLIError(f"{path}: expected a table with more than {targets} column(s), got "
                           f"shape {data.shape}")
        return data[:, :-targets], data[:, -targets:]
    raise CLIError(f"{path}: expected a .npz or .csv file, got {path.suffix or 'no suffix'}")


def _problem(args, X, Y):
    from .core.problem import Problem

    return Problem(X, Y, args.depth, args.lam, activation=getattr(args, "activation", "relu"),
                   loss=args.loss, bias=args.bias)


def _print(args, text: str):
    if not args.quiet and not args.json:
        print(text)


def _emit_json(obj):
    print(json.dumps(obj, indent=2, default=float))


def _result_dict(res) -> dict:
    return {
        "objective": res.objective, "lower_bound": res.lower_bound, "gap": res.gap,
        "certified": res.certified, "exact": res.exact, "widths": list(res.widths),
        "status": res.status, "solver": res.solver, "method": res.method,
        "success": res.success, "message": res.message, "solve_time": res.solve_time,
        "history": list(res.history),
        "timings": {"compile_time": res.info.get("compile_time"),
                    "solver_time": res.info.get("solver_time")},
    }


# --- commands ------------------------------------------------------------------------------
def _demo(args) -> int:
    import conic_dnn as cd

    quick = {}
    rng = np.random.default_rng(0)
    out = {}
    _print(args, "conic_dnn demo: exact analysis of L2-regularised ReLU networks\n")
    # 1. two layers, N = 4: exact cone program, certified global optimum
    X = rng.normal(size=(4, 2))
    Y = np.sin(2 * X[:, :1]) + 0.3 * X[:, 1:]
    p2 = cd.Problem(X, Y, depth=2, lam=0.01)
    r2 = cd.solve(p2, **quick)
    N = p2.N
    _print(args, f"[1] two-layer ReLU, {p2}\n{r2}\n"
                 f"    neurons found: {r2.widths[0]}  (bound N(N+1) = {N * (N + 1)})\n")
    out["two_layer"] = _result_dict(r2)
    # 2. depth 3: alternating layer programs, then per-layer certificates
    p3 = cd.Problem(X, Y, depth=3, lam=0.01)
    # block-coordinate sweeps are a local method: two starts (linear and random init)
    r3 = cd.solve(p3, max_sweeps=20, n_starts=2, progress=not (args.quiet or args.json))
    cert = cd.certify(p3, r3.network, tol=CERT_TOL)
    _print(args, f"[2] depth-3 ReLU, {p3}\n{r3}\n{cert}\n"
                 f"    neurons per hidden layer: {r3.widths}  (bound N(N+1) = {N * (N + 1)})\n")
    out["deep"] = _result_dict(r3)
    out["deep"]["certificate"] = cert.to_dict()
    if args.json:
        _emit_json(out)
    else:
        print("Summary")
        print(f"  two-layer objective {r2.objective:.8f}, lower bound {r2.lower_bound:.8f}, "
              f"gap {r2.gap:.1e} -> {'certified global optimum' if r2.certified else 'gap'}")
        print(f"  depth-3   objective {r3.objective:.8f} after {r3.info['sweeps']} sweep(s); "
              f"per layer: {'; '.join(_layer_verdict(lc) for lc in cert.layers)}")
    return 0


def _layer_verdict(lc) -> str:
    if lc.certified:
        return f"{lc.layer} certified"
    if lc.improving_neuron is not None:
        return f"{lc.layer} improvable (rate {lc.decrease:.2g})"
    return (f"{lc.layer} not certified (margin {lc.min_margin:.2g}) but no improving neuron "
            f"(a kink)")


def _solve(args) -> int:
    import conic_dnn as cd

    X, Y = load_data(args.data, args.targets)
    p = _problem(args, X, Y)
    t0 = time.perf_counter()
    res = cd.solve(p, method=args.method, solver=args.solver, max_sweeps=args.max_sweeps,
                   n_starts=args.starts,
                   progress=not (args.quiet or args.json) and p.depth > 2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    d = _result_dict(res)
    d["wall_time"] = time.perf_counter() - t0
    (out / "result.json").write_text(json.dumps(d, indent=2, default=float))
    res.network.save(out / "network.npz")
    if args.json:
        _emit_json(d)
    else:
        _print(args, f"{res}\nwrote {out / 'result.json'} and {out / 'network.npz'}")
    return 0


def _parse_lams(text: str) -> list[float]:
    try:
        lams = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise CLIError(f"--lams: expected comma-separated numbers, got {text!r}") from None
    if not lams:
        raise CLIError(f"--lams: expected comma-separated numbers, got {text!r}")
    return lams


def _path(args) -> int:
    import conic_dnn as cd

    X, Y = load_data(args.data, args.targets)
    lams = _parse_lams(args.lams)
    # the problem's own lam is not used (solve_path checks lams)
    p = cd.Problem(X, Y, 2, 1.0, activation=args.activation, loss=args.loss, bias=args.bias)
    results = cd.solve_path(p, lams, method=args.method, solver=args.solver,
                            progress=not (args.quiet or args.json))
    rows = [{"lam": lam, **_result_dict(r)} for lam, r in zip(lams, results)]
    if args.json:
        _emit_json({"path": rows})
        return 0
    _print(args, f"regularisation path, {p.N} points, depth 2, {results[0].method} program "
                 f"(compiled once)")
    _print(args, f"{'lam':>10} {'objective':>12} {'lower bound':>12} {'rel. gap':>9} "
                 f"{'certified':>9} {'width':>5}")
    for r in rows:
        rel = r["gap"] / abs(r["objective"]) if r["objective"] else float("nan")
        _print(args, f"{r['lam']:>10.3g} {r['objective']:>12.8g} {r['lower_bound']:>12.8g} "
                     f"{rel:>9.1e} {'yes' if r['certified'] else 'no':>9} "
                     f"{r['widths'][0]:>5}")
    return 0


def _load_network(path):
    from .core.network import Network

    path = Path(path)
    if not path.exists():
        raise CLIError(f"network file not found: {path}")
    return Network.load(path)


def _network_problem(args):
    """The network file and the problem on DATA that matches it (depth, activation, bias)."""
    net = _load_network(args.network)
    X, Y = load_data(args.data, args.targets)
    args.depth = net.depth
    return net, _problem(args, X, Y).replace(activation=net.activation, bias=net.bias)


def _prune(args) -> int:
    import conic_dnn as cd

    from .neurons.pruning import PRUNE_METHODS

    if args.method not in PRUNE_METHODS:
        raise CLIError(f"--method: expected one of {', '.join(PRUNE_METHODS)}, got "
                       f"{args.method!r}")
    net, p = _network_problem(args)
    report = cd.sparsity_report(p, net)  # prunes with both methods
    pruned = report.pruned[args.method]
    out = Path(args.out)
    pruned.save(out)
    if args.json:
        d = report.to_dict()
        d.update({"loss_before": net.loss(p), "loss_after": pruned.loss(p),
                  "widths_after": list(pruned.widths), "output": str(out)})
        _emit_json(d)
    else:
        _print(args, f"{report}\nloss {net.loss(p):.10g} -> {pruned.loss(p):.10g}; "
                     f"widths {net.widths} -> {pruned.widths}; wrote {out}")
    return 0


def _certify(args) -> int:
    import conic_dnn as cd

    net, p = _network_problem(args)
    cert = cd.certify(p, net, tol=args.tol)
    if args.json:
        _emit_json(cert.to_dict())
    else:
        _print(args, str(cert))
    return 0 if cert.certified else 1


# --- parser --------------------------------------------------------------------------------
def _common(sp, data=True, network=False, lam=True):
    if network:
        sp.add_argument("network", help="network .npz (as written by solve / Network.save)")
    if data:
        sp.add_argument("data", help=".npz with arrays X, Y, or .csv")
        sp.add_argument("--targets", type=int, default=1,
                        help="CSV: number of trailing target columns (default 1)")
        if lam:
            sp.add_argument("--lam", type=float, default=None if not network else 1e-2,
                            required=not network, help="regularisation strength")
        sp.add_argument("--bias", type=float, default=0.0, help="the paper's beta (default 0)")
        sp.add_argument("--loss", default="mse", help="mse, logistic, hinge, cross_entropy")
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.add_argument("--quiet", action="store_true", help="no progress, no text")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="conic-dnn",
                                     description="Exact analysis of L2-regularised networks.")
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="the main job on built-in data")
    _common(d, data=False)
    s = sub.add_parser("solve", help="solve a problem from data")
    _common(s)
    s.add_argument("--depth", type=int, default=2, help="number of weight matrices (>= 2)")
    s.add_argument("--activation", default="relu", help="relu, leaky_relu, abs, identity")
    s.add_argument("--method", default="auto",
                   help="auto, pattern, lifted, column_generation (depth 2, squared loss)")
    s.add_argument("--solver", default=None, help="CLARABEL, MOSEK, SCS (default: automatic)")
    s.add_argument("--max-sweeps", type=int, default=50, dest="max_sweeps")
    s.add_argument("--starts", type=int, default=1,
                   help="depth >= 3: number of starts (linear init, then random)")
    s.add_argument("--out", default="conic_dnn_out", help="output directory")
    pr = sub.add_parser("prune", help="prune a network and print its sparsity report")
    _common(pr, network=True)
    pr.add_argument("--method", default="caratheodory", help="caratheodory or lp")
    pr.add_argument("--out", default="pruned.npz", help="where to write the pruned network")
    c = sub.add_parser("certify", help="per-layer certificates of a network")
    _common(c, network=True)
    c.add_argument("--tol", type=float, default=CERT_TOL,
                   help=f"relative tolerance of the margins (default {CERT_TOL:g})")
    pa = sub.add_parser("path", help="a depth-2 regularisation path (one compiled program)")
    _common(pa, lam=False)
    pa.add_argument("--lams", default="1e-3,3e-3,1e-2,3e-2,1e-1",
                    help="comma-separated values of lam (default 1e-3,3e-3,1e-2,3e-2,1e-1)")
    pa.add_argument("--activation", default="relu", help="relu, leaky_relu, abs, identity")
    pa.add_argument("--method", default="auto",
                    help="auto, pattern, lifted, column_generation (squared loss)")
    pa.add_argument("--solver", default=None, help="CLARABEL, MOSEK, SCS (default: automatic)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 not certified, 2 bad input)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed one line of usage error
        return int(exc.code or 0)
    handlers = {"demo": _demo, "solve": _solve, "prune": _prune, "certify": _certify,
                "path": _path}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            code = handlers[args.command](args)
        if not (args.quiet or args.json):  # one line per distinct warning, no source lines
            for msg in dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught):
                print(f"note: {msg}", file=sys.stderr)
        return code
    except (CLIError, ValueError, TypeError, FileNotFoundError) as exc:
        print(f"conic-dnn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # solver failures and the like: one line, not a traceback
        print(f"conic-dnn {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
