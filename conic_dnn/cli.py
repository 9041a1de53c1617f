"""The ``conic-dnn`` command line.

Commands
--------
demo
    The main job on built-in data: a two-layer ReLU instance solved to a certified global
    optimum, a depth-3 instance solved layer by layer with per-layer certificates, and the
    neurons found against the N(N+1) bound.
solve DATA --depth L --lam LAM
    Solve a problem from ``.npz`` (arrays ``X``, ``Y``) or ``.csv`` (last ``--targets``
    columns are ``Y``); writes ``network.npz`` then ``result.json`` to ``--out`` (the formats
    of :meth:`conic_dnn.Network.save` and :meth:`conic_dnn.Result.save`: both record the
    problem: lam, loss, activation, bias, depth, hashes of X and Y, method, version).
prune NETWORK.npz DATA
    Caratheodory / LP pruning; prints the sparsity report, writes the pruned network.
certify NETWORK.npz DATA
    Per-layer certificates; exit code 0 when every layer is certified, 1 otherwise.
path DATA --lams 1e-3,1e-2,1e-1
    A depth-2 regularisation path through one compiled cone program
    (:func:`conic_dnn.solve_path`): objective, lower bound, relative gap, certificate and width
    per ``lam``.

``prune`` and ``certify`` take lam, loss, activation, bias and depth from the network's problem
record when no flag gives them; a flag that contradicts the record, or DATA whose hash differs
from the recorded one, is refused unless ``--force`` (activation, bias and depth are the
network's own and cannot be overridden).

Every command takes ``--json`` (strict JSON on stdout, warnings included as a list) and
``--quiet`` (no text, no progress bars). Files: an existing output is never overwritten without
``--force``, an input never (even with ``--force``); outputs are written atomically, the network
before the result that points to it.

Exit codes: 0 ok, 1 not certified (``certify``), 2 bad input or usage (one line on stderr),
3 solver or write failure, 130 interrupted (Ctrl-C).

May import: anything in conic_dnn (the CLI is the outermost layer).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

import numpy as np

from .cli_inputs import (
    CLIError,
    CLIWriteError,
    check_outputs,
    load_data,
    loss_text,
    network_problem,
    npz_name,
    parse_loss,
)
from .core.records import dumps_strict

__all__ = ["main", "load_data"]


#: Tolerance of the certificates printed by ``demo`` and the default of ``certify --tol``:
#: margins are first-order quantities, ~sqrt of the loss accuracy of a cone solve (1e-8).
CERT_TOL = 1e-3


def _problem(args, X, Y):
    from .core.problem import Problem

    return Problem(X, Y, args.depth, args.lam, activation=args.activation,
                   loss=parse_loss(args.loss), bias=args.bias)


def _print(args, text: str):
    if not args.quiet and not args.json:
        print(text)


def _messages(caught) -> list[str]:
    return list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))


def _emit_json(args, obj: dict):
    obj = dict(obj)
    obj["warnings"] = list(dict.fromkeys([*obj.get("warnings", []), *_messages(args.caught)]))
    print(dumps_strict(obj))


# --- commands ------------------------------------------------------------------------------
def _demo(args) -> int:
    import conic_dnn as cd

    rng = np.random.default_rng(0)
    out = {}
    _print(args, "conic_dnn demo: exact analysis of L2-regularised ReLU networks\n")
    # 1. two layers, N = 4: exact cone program, certified global optimum
    X = rng.normal(size=(4, 2))
    Y = np.sin(2 * X[:, :1]) + 0.3 * X[:, 1:]
    p2 = cd.Problem(X, Y, depth=2, lam=0.01)
    r2 = cd.solve(p2)
    N = p2.N
    _print(args, f"[1] two-layer ReLU, {p2}\n{r2}\n"
                 f"    neurons found: {r2.widths[0]}  (bound N(N+1) = {N * (N + 1)})\n")
    out["two_layer"] = r2.to_dict()
    # 2. depth 3: alternating layer programs, then per-layer certificates
    p3 = cd.Problem(X, Y, depth=3, lam=0.01)
    # block-coordinate sweeps are a local method: two starts (linear and random init)
    r3 = cd.solve(p3, max_sweeps=20, n_starts=2, progress=not args.quiet)
    cert = cd.certify(p3, r3.network, tol=CERT_TOL)
    _print(args, f"[2] depth-3 ReLU, {p3}\n{r3}\n{cert}\n"
                 f"    neurons per hidden layer: {r3.widths}  (bound N(N+1) = {N * (N + 1)})\n")
    out["deep"] = r3.to_dict()
    out["deep"]["certificate"] = cert.to_dict()
    if args.json:
        _emit_json(args, out)
    else:
        print("Summary")
        print(f"  two-layer objective {r2.objective:.8f}, lower bound {r2.lower_bound:.8f}, "
              f"relative gap {r2.rel_gap:.1e} -> "
              f"{'certified global optimum' if r2.certified else 'not certified'}")
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

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out: {out} exists and is not a directory")
    net_path, json_path = out / "network.npz", out / "result.json"
    check_outputs([net_path, json_path], [Path(args.data)], args.force)
    X, Y = load_data(args.data, args.targets)
    p = _problem(args, X, Y)
    res = cd.solve(p, method=args.method, solver=args.solver, max_sweeps=args.max_sweeps,
                   n_starts=args.starts, progress=not args.quiet, time_limit=args.time_limit)
    res = res.with_warnings(_messages(args.caught))
    try:
        res.save(json_path, overwrite=args.force)  # network.npz first, then result.json
    except FileExistsError as exc:
        raise CLIError(f"--out: {exc}; pass --force to overwrite") from None
    except OSError as exc:
        raise CLIWriteError(f"could not write the results to {out}: {exc}") from None
    if args.json:
        d = res.to_dict()
        d["output"] = {"network": str(net_path), "result": str(json_path)}
        _emit_json(args, d)
    else:
        _print(args, f"{res}\nwrote {net_path} and {json_path}")
    return 0


def _parse_lams(text: str) -> list[float]:
    try:
        lams = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise CLIError(f"--lams: expected comma-separated numbers, got {text!r}") from None
    if not lams:
        raise CLIError(f"--lams: expected comma-separated numbers, got {text!r}")
    return lams


def _fmt(v, spec: str) -> str:
    return "none" if v is None or not np.isfinite(v) else format(v, spec)


def _path(args) -> int:
    import conic_dnn as cd

    X, Y = load_data(args.data, args.targets)
    lams = _parse_lams(args.lams)
    # the problem's own lam is not used (solve_path checks lams)
    p = cd.Problem(X, Y, 2, 1.0, activation=args.activation, loss=parse_loss(args.loss),
                   bias=args.bias)
    results = cd.solve_path(p, lams, method=args.method, solver=args.solver,
                            progress=not args.quiet, time_limit=args.time_limit)
    rows = [{"lam": lam, **r.to_dict()} for lam, r in zip(lams, results)]
    if args.json:
        _emit_json(args, {"path": rows})
        return 0
    methods = sorted({r.method for r in results})
    how = ("each lam solved on its own" if "column_generation" in methods
           else "program compiled once")
    _print(args, f"regularisation path, {p.N} points, depth 2, {', '.join(methods)} ({how})")
    _print(args, f"{'lam':>10} {'objective':>12} {'lower bound':>12} {'rel. gap':>9} "
                 f"{'certified':>9} {'width':>5}")
    for r in rows:
        _print(args, f"{r['lam']:>10.3g} {r['objective']:>12.8g} "
                     f"{_fmt(r['lower_bound'], '>12.8g'):>12} {_fmt(r['rel_gap'], '>9.1e'):>9} "
                     f"{'yes' if r['certified'] else 'no':>9} {r['widths'][0]:>5}")
    if len(results) < len(lams):
        _print(args, f"time limit: {len(lams) - len(results)} lam value(s) not solved")
    return 0


def _settings(p, net) -> dict:
    return {"lam": p.lam, "loss": loss_text(p.loss), "activation": p.activation.name,
            "bias": p.bias, "depth": p.depth, "record": net.problem_record is not None}


def _prune(args) -> int:
    import conic_dnn as cd

    from .neurons.pruning import PRUNE_METHODS

    if args.method not in PRUNE_METHODS:
        raise CLIError(f"--method: expected one of {', '.join(PRUNE_METHODS)}, got "
                       f"{args.method!r}")
    out = npz_name(args.out)
    check_outputs([out], [Path(args.network), Path(args.data)], args.force)
    net, p = network_problem(args)
    report = cd.sparsity_report(p, net)  # prunes with both methods
    pruned = report.pruned[args.method]
    rec = net.problem_record
    method = f"{rec.method if rec and rec.method else 'given'}+prune:{args.method}"
    try:
        pruned.save(out, p, method=method, overwrite=args.force)
    except FileExistsError as exc:
        raise CLIError(f"--out: {exc}; pass --force to overwrite") from None
    except OSError as exc:
        raise CLIWriteError(f"could not write {out}: {exc}") from None
    before, after = net.loss(p), pruned.loss(p)
    if args.json:
        d = report.to_dict()
        d.update({"loss_before": before, "loss_after": after, "problem": _settings(p, net),
                  "widths_after": list(pruned.widths), "output": str(out)})
        _emit_json(args, d)
    else:
        _print(args, f"{report}\nloss {before:.10g} -> {after:.10g} (relative change "
                     f"{(after - before) / abs(before) if before else 0.0:.1e}); "
                     f"widths {net.widths} -> {pruned.widths}; wrote {out}")
    return 0


def _certify(args) -> int:
    import conic_dnn as cd

    net, p = network_problem(args)
    cert = cd.certify(p, net, tol=args.tol)
    if args.json:
        d = cert.to_dict()
        d["problem"] = _settings(p, net)
        _emit_json(args, d)
    else:
        _print(args, str(cert))
    return 0 if cert.certified else 1


# --- parser --------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (a CLIError, exit 2), not usage + message."""

    def error(self, message):
        raise CLIError(f"{self.prog}: error: " + " ".join(str(message).split()))


def _common(sp, data=True, network=False, lam=True):
    if network:
        sp.add_argument("network", help="network .npz (as written by solve / Network.save)")
    if data:
        sp.add_argument("data", help=".npz with arrays X, Y, or .csv")
        sp.add_argument("--targets", type=int, default=1,
                        help="CSV: number of trailing target columns (default 1)")
        rec = " (default: the network's record)" if network else ""
        if lam:
            sp.add_argument("--lam", type=float, default=None, required=not network,
                            help="regularisation strength" + rec)
        sp.add_argument("--bias", type=float, default=None if network else 0.0,
                        help="the paper's beta" + (rec or " (default 0)"))
        sp.add_argument("--loss", default=None if network else "mse",
                        help="mse, logistic, hinge, cross_entropy, huber or huber:DELTA"
                             + (rec or " (default mse)"))
    sp.add_argument("--json", action="store_true", help="strict JSON on stdout")
    sp.add_argument("--quiet", action="store_true", help="no progress, no text")


def _structure(sp, network: bool):
    rec = " (default: the network's)" if network else ""
    sp.add_argument("--depth", type=int, default=None if network else 2,
                    help="number of weight matrices (>= 2)" + rec)
    sp.add_argument("--activation", default=None if network else "relu",
                    help="relu, leaky_relu, abs, identity" + rec)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="conic-dnn", description="Exact analysis of L2-regularised networks.")
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="the main job on built-in data")
    _common(d, data=False)
    s = sub.add_parser("solve", help="solve a problem from data")
    _common(s)
    _structure(s, network=False)
    s.add_argument("--method", default="auto",
                   help="auto, pattern, lifted, column_generation (depth 2, any built-in "
                        "convex loss)")
    s.add_argument("--solver", default=None, help="CLARABEL, MOSEK, SCS (default: automatic)")
    s.add_argument("--max-sweeps", type=int, default=50, dest="max_sweeps")
    s.add_argument("--starts", type=int, default=1,
                   help="depth >= 3: number of starts (linear init, then random)")
    s.add_argument("--time-limit", type=float, default=None, dest="time_limit",
                   help="wall-clock budget in seconds (best network so far, status time_limit)")
    s.add_argument("--out", default="conic_dnn_out", help="output directory")
    s.add_argument("--force", action="store_true", help="overwrite existing output files")
    pr = sub.add_parser("prune", help="prune a network and print its sparsity report")
    _common(pr, network=True)
    _structure(pr, network=True)
    pr.add_argument("--method", default="caratheodory", help="caratheodory or lp")
    pr.add_argument("--out", default="pruned.npz", help="where to write the pruned network")
    pr.add_argument("--force", action="store_true",
                    help="overwrite an existing output; accept flags or data that contradict "
                         "the network's record")
    c = sub.add_parser("certify", help="per-layer certificates of a network")
    _common(c, network=True)
    _structure(c, network=True)
    c.add_argument("--tol", type=float, default=CERT_TOL,
                   help=f"relative tolerance of the margins (default {CERT_TOL:g})")
    c.add_argument("--force", action="store_true",
                   help="accept flags or data that contradict the network's record")
    pa = sub.add_parser("path", help="a depth-2 regularisation path (one compiled program)")
    _common(pa, lam=False)
    pa.add_argument("--lams", default="1e-3,3e-3,1e-2,3e-2,1e-1",
                    help="comma-separated values of lam (default 1e-3,3e-3,1e-2,3e-2,1e-1)")
    pa.add_argument("--activation", default="relu", help="relu, leaky_relu, abs, identity")
    pa.add_argument("--method", default="auto",
                    help="auto, pattern, lifted, column_generation (any built-in convex loss)")
    pa.add_argument("--solver", default=None, help="CLARABEL, MOSEK, SCS (default: automatic)")
    pa.add_argument("--time-limit", type=float, default=None, dest="time_limit",
                    help="wall-clock budget in seconds for the whole path")
    return parser


_HANDLERS = {"demo": _demo, "solve": _solve, "prune": _prune, "certify": _certify,
             "path": _path}


def _silence_stdout():
    """After a closed pipe: point stdout at /dev/null so the interpreter's final flush is
    silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _run(argv) -> int:
    try:
        args = _parser().parse_args(argv)
    except CLIError as exc:
        print(f"{exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            args.caught = caught
            code = _HANDLERS[args.command](args)
            sys.stdout.flush()
        if not (args.quiet or args.json):  # one line per distinct warning, no source lines
            for msg in _messages(caught):
                print(f"note: {msg}", file=sys.stderr)
        return code
    except (CLIError, ValueError, TypeError, FileNotFoundError) as exc:
        print(f"conic-dnn {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, BrokenPipeError):
        raise
    except CLIWriteError as exc:
        print(f"conic-dnn {args.command}: {_one_line(exc)}", file=sys.stderr)
        return 3
    except Exception as exc:  # solver failures and the like: one line, not a traceback
        print(f"conic-dnn {args.command}: {type(exc).__name__}: {_one_line(exc)}",
              file=sys.stderr)
        return 3


def _one_line(exc) -> str:
    return " ".join(str(exc).split())


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 not certified, 2 bad input or usage,
    3 solver or write failure, 130 interrupted)."""
    try:
        return _run(argv)
    except KeyboardInterrupt:
        print("conic-dnn: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `conic-dnn path ... | head -1`
        _silence_stdout()
        return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
