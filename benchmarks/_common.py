"""Shared helpers of the benchmark scripts.

Every script parses the same command line (``--quick`` for the smoke-test grid), records the
machine it ran on, prints plain-text tables and writes its measurements as JSON to
``benchmarks/results/<name>.json`` (``<name>_quick.json`` in quick mode, so a quick run never
overwrites the full results).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PACKAGES = ("numpy", "scipy", "cvxpy", "clarabel", "scs", "conic-dnn")


def parse_args(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the common command line of a benchmark script.

    Parameters
    ----------
    description : str
        Shown by ``--help``.
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    argparse.Namespace
        With ``quick`` (bool), ``seed`` (int) and ``out`` (path or None).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true",
                        help="tiny grid for the smoke test (results go to <name>_quick.json)")
    parser.add_argument("--seed", type=int, default=0, help="base seed of the random data")
    parser.add_argument("--out", type=Path, default=None,
                        help="directory for the JSON results (default benchmarks/results)")
    return parser.parse_args(argv)


def package_version(name: str) -> str:
    """Installed version of a distribution, or ``"not installed"``."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict:
    """CPU count, platform and versions of the numerical packages.

    Returns
    -------
    dict
    """
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": sys.version.split()[0],
        "packages": {name: package_version(name) for name in PACKAGES},
    }


def problem_data(N: int, d: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian inputs ``X`` (N, d) and targets ``Y`` (N, k) from a seeded generator.

    Parameters
    ----------
    N, d, k : int
    seed : int

    Returns
    -------
    (ndarray, ndarray)
    """
    rng = np.random.default_rng([seed, N, d, k])
    return rng.normal(size=(N, d)), rng.normal(size=(N, k))


def rel_excess(value: float, reference: float) -> float:
    """Relative excess ``(value - reference) / |reference|`` (negative: below the reference)."""
    return float((value - reference) / max(abs(reference), 1e-300))


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        x = float(obj)
        return x if math.isfinite(x) else str(x)
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    return obj


def write_results(name: str, args: argparse.Namespace, config: dict, rows: list[dict],
                  wall_time: float, extra: dict | None = None) -> Path:
    """Write the results of a benchmark as JSON.

    Parameters
    ----------
    name : str
        Benchmark name (the file is ``<name>.json``, or ``<name>_quick.json`` with ``--quick``).
    args : argparse.Namespace
        Parsed command line.
    config : dict
        The grid and the settings of the baselines.
    rows : list of dict
        One record per measurement.
    wall_time : float
        Seconds the whole script took.
    extra : dict, optional
        Further sections (summaries, secondary tables).

    Returns
    -------
    Path
        The file written.
    """
    out_dir = args.out if args.out is not None else RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / (f"{name}_quick.json" if args.quick else f"{name}.json")
    payload = {
        "benchmark": name,
        "quick": bool(args.quick),
        "seed": args.seed,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "wall_time_s": wall_time,
        "machine": machine_info(),
        "config": config,
        "rows": rows,
    }
    if extra:
        payload.update(extra)
    path.write_text(json.dumps(_jsonable(payload), indent=2) + "\n")
    return path


def _fmt(value, spec: str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (tuple, list)):
        return "(" + ",".join(str(v) for v in value) + ")"
    if spec is None:
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return format(value, spec)


def format_table(rows: list[dict], columns: list[tuple]) -> str:
    """A plain-text table.

    Parameters
    ----------
    rows : list of dict
    columns : list of tuple
        ``(key, header)`` or ``(key, header, format_spec)``; a missing key prints ``-``.

    Returns
    -------
    str
    """
    heads = [c[1] for c in columns]
    body = [[_fmt(r.get(c[0]), c[2] if len(c) > 2 else None) for c in columns] for r in rows]
    widths = [max([len(h)] + [len(line[i]) for line in body]) for i, h in enumerate(heads)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(heads, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.rjust(w) for v, w in zip(line, widths)) for line in body]
    return "\n".join(lines)


def print_table(title: str, rows: list[dict], columns: list[tuple]) -> None:
    """Print a titled plain-text table (see :func:`format_table`)."""
    print(f"\n{title}")
    print(format_table(rows, columns), flush=True)


def print_header(name: str, args: argparse.Namespace) -> None:
    """Print the benchmark name, the mode and the machine."""
    info = machine_info()
    pk = ", ".join(f"{k} {v}" for k, v in info["packages"].items())
    print(f"{name} ({'quick' if args.quick else 'full'} mode, seed {args.seed})")
    print(f"machine: {info['cpu_count']} cpus, {info['platform']}, python {info['python']}")
    print(f"packages: {pk}", flush=True)
