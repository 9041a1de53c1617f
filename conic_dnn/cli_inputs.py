"""The ``conic-dnn`` command's inputs and outputs: data files (checked dtypes and sizes), the
network and the problem it belongs to (flags against the network's problem record), and the
guards on output files (never an input, never an existing file without ``--force``).

May import: anything in conic_dnn (part of the CLI, the outermost layer).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .core.records import MAX_NPZ_BYTES, check_data_dtype, read_npz

__all__ = ["CLIError", "CLIWriteError", "load_data", "parse_loss", "loss_text",
           "check_outputs", "npz_name", "network_problem"]


class CLIError(Exception):
    """A user error: reported as one line, exit code 2."""


class CLIWriteError(Exception):
    """A failure that is not the user's input (e.g. a write): one line, exit code 3."""


def load_data(path, targets: int = 1, max_bytes: int = MAX_NPZ_BYTES):
    """Read ``X`` and ``Y`` from an ``.npz`` (arrays ``X``, ``Y``) or a ``.csv`` file (the last
    ``targets`` columns are ``Y``; a header line is skipped if it is not numeric).

    An ``.npz`` is checked before it is read (expanded size ``<= max_bytes``, no pickles);
    ``X`` and ``Y`` must be real numbers (bool, integer, float): object, string, complex,
    datetime, timedelta and masked arrays are refused."""
    path = Path(path)
    if not path.exists():
        raise CLIError(f"data file not found: {path}")
    if path.suffix == ".npz":
        f = read_npz(path, max_bytes)
        missing = [k for k in ("X", "Y") if k not in f]
        if missing:
            raise CLIError(f"{path}: expected arrays X and Y in the npz file, got "
                           f"{', '.join(sorted(f)) or 'none'}")
        for k in ("X", "Y"):
            check_data_dtype(f[k], f"{path}: {k}")
        return np.array(f["X"]), np.array(f["Y"])
    if path.suffix == ".csv":
        return _load_csv(path, targets)
    raise CLIError(f"{path}: expected a .npz or .csv file, got {path.suffix or 'no suffix'}")


def _load_csv(path: Path, targets: int):
    if targets < 1:
        raise CLIError(f"--targets: expected a positive integer, got {targets}")
    try:
        data = np.genfromtxt(path, delimiter=",", dtype=float)
    except ValueError as exc:
        raise CLIError(f"{path}: could not read a numeric CSV ({exc})") from None
    if data.ndim == 2 and data.shape[0] > 0 and np.all(np.isnan(data[0])):
        data = data[1:]
    if data.ndim != 2 or data.shape[1] <= targets or data.shape[0] == 0:
        raise CLIError(f"{path}: expected a table with more than {targets} column(s), got "
                       f"shape {data.shape}")
    bad = np.argwhere(np.isnan(data))
    if bad.size:
        i, j = bad[0]
        raise CLIError(f"{path}: expected real numbers, got a non-numeric or missing entry "
                       f"(data row {i + 1}, column {j + 1}; {len(bad)} such entries)")
    return data[:, :-targets], data[:, -targets:]


def parse_loss(text: str):
    """A loss from ``NAME`` or ``huber:DELTA``."""
    from .core.losses import Huber, get_loss

    name, _, param = text.partition(":")
    if not param:
        return get_loss(name)
    if name.strip().lower() != "huber":
        raise CLIError(f"--loss: only huber takes a parameter (huber:DELTA), got {text!r}")
    try:
        return Huber(float(param))
    except ValueError:
        raise CLIError(f"--loss: expected huber:DELTA with a number DELTA, got {text!r}") \
            from None


def loss_text(loss) -> str:
    delta = getattr(loss, "delta", None)
    return loss.name if delta is None else f"{loss.name}:{delta:g}"


# --- output files ---------------------------------------------------------------------------------
def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False


def check_outputs(outputs, inputs, force: bool):
    """Refuse an output that is an input (always) or exists (unless ``force``)."""
    for out in outputs:
        for inp in inputs:
            if _same_file(out, inp):
                raise CLIError(f"--out: {out} is one of the inputs; refusing to write it "
                               f"(even with --force)")
        if out.is_dir():
            raise CLIError(f"--out: {out} is a directory, expected a file name")
        if out.exists() and not force:
            raise CLIError(f"--out: {out} exists; pass --force to overwrite it")


def npz_name(path) -> Path:
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_suffix(path.suffix + ".npz")


def load_network(path):
    from .core.network import Network

    path = Path(path)
    if not path.exists():
        raise CLIError(f"network file not found: {path}")
    return Network.load(path)


def check_structure(args, net):
    """Depth, activation and bias are the network's own: a flag may only repeat them."""
    from .core.activations import get_activation

    if args.depth is not None and args.depth != net.depth:
        raise CLIError(f"--depth {args.depth}: the network has depth {net.depth}")
    if args.bias is not None and args.bias != net.bias:
        raise CLIError(f"--bias {args.bias:g}: the network was built with bias {net.bias:g}")
    if args.activation is not None:
        act, own = get_activation(args.activation), net.activation
        if not act.is_homogeneous or (act.a, act.b) != (own.a, own.b):
            raise CLIError(f"--activation {args.activation}: the network's activation is "
                           f"{own.name} (a = {own.a:g}, b = {own.b:g})")


def network_problem(args):
    """The network file and the problem on DATA it belongs to: lam and loss from the flags or
    the network's problem record (a contradiction, or other data, refused unless --force)."""
    from .core.losses import get_loss
    from .core.problem import Problem

    net = load_network(args.network)
    X, Y = load_data(args.data, args.targets)
    check_structure(args, net)
    rec, conflicts = net.problem_record, []
    given_loss = None if args.loss is None else parse_loss(args.loss)
    if rec is None:
        if args.lam is None:
            raise CLIError(f"--lam: required, {args.network} has no problem record (give "
                           f"--lam, and --loss unless it is the MSE)")
        lam, loss = args.lam, given_loss or get_loss("mse")
    else:
        try:
            rec_loss = get_loss(rec.loss)
            rec_loss = type(rec_loss)(**rec.loss_params) if rec.loss_params else rec_loss
        except (TypeError, ValueError) as exc:
            if given_loss is None:
                raise CLIError(f"{args.network}: the recorded loss cannot be rebuilt ({exc}); "
                               f"give --loss") from None
            rec_loss = None
        lam = rec.lam if args.lam is None else args.lam
        if args.lam is not None and args.lam != rec.lam:
            conflicts.append(f"--lam {args.lam:g} contradicts the network's record "
                             f"(lam = {rec.lam!r})")
        loss = rec_loss if given_loss is None else given_loss
        if given_loss is not None and given_loss != rec_loss:
            conflicts.append(f"--loss {args.loss} contradicts the network's record "
                             f"(loss = {loss_text(rec_loss) if rec_loss else rec.loss})")
    p = Problem(X, Y, net.depth, lam, activation=net.activation, loss=loss, bias=net.bias)
    if rec is not None:
        conflicts += [f"{args.data}: {m} the network was solved on"
                      for m in rec.data_mismatches(p.X, p.Y)]
    if conflicts and not args.force:
        raise CLIError("; ".join(conflicts) + " (pass --force to proceed anyway)")
    return net, p
