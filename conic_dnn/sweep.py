"""Solve many problems at once (grids of seeds x N x lam x data set), sequentially, on local
processes (joblib) or on a Dask cluster (a ``distributed.Client`` the caller passes).

May import: conic_dnn.solve, conic_dnn.core.

Every problem is solved by :func:`conic_dnn.solve` with the same keyword arguments and, in every
backend, with BLAS limited to one thread inside the solve (so a worker's thread count cannot
change the summation order): the results are the same, bit for bit, whichever backend runs them,
and come back in the order of ``problems``. joblib and dask are optional (joblib ships with
scikit-learn; dask is the ``distributed`` extra) and imported only when their backend is used.
"""

from __future__ import annotations

import inspect
from functools import partial

from .core.problem import Problem
from .core.result import Result
from .solve import solve

__all__ = ["solve_many", "SWEEP_BACKENDS"]

SWEEP_BACKENDS = ("sequential", "joblib", "dask")


def _solve_one(problem: Problem, kwargs: dict) -> Result:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return solve(problem, **kwargs)


def _check(problems, backend, n_jobs, client) -> tuple[list, str]:
    if isinstance(problems, Problem) or not hasattr(problems, "__iter__"):
        raise TypeError(f"problems: expected an iterable of conic_dnn.Problem, got "
                        f"{type(problems).__name__}")
    problems = list(problems)
    for i, p in enumerate(problems):
        if not isinstance(p, Problem):
            raise TypeError(f"problems[{i}]: expected a conic_dnn.Problem, got "
                            f"{type(p).__name__}")
    if backend is None:
        backend = "dask" if client is not None else "sequential"
    if backend not in SWEEP_BACKENDS:
        raise ValueError(f"backend: expected one of {', '.join(SWEEP_BACKENDS)}, got "
                         f"{backend!r}")
    if backend == "dask" and client is None:
        raise ValueError("client: backend='dask' needs a distributed.Client (e.g. "
                         "Client(LocalCluster(n_workers=2)))")
    if client is not None and backend != "dask":
        raise ValueError(f"client: a Dask client was passed with backend={backend!r}; pass "
                         f"backend='dask' (or leave it None)")
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, int)
                               or n_jobs == 0):
        raise ValueError(f"n_jobs: expected None or a non-zero int (joblib's convention, -1 = "
                         f"all cores), got {n_jobs!r}")
    return problems, backend


def solve_many(problems, backend: str | None = None, n_jobs: int | None = None,
               client=None, **solve_kwargs) -> list[Result]:
    """:func:`conic_dnn.solve` on every problem, optionally in parallel.

    Parameters
    ----------
    problems : iterable of Problem
        E.g. ``[Problem(X, Y, 2, lam) for lam in lams for X, Y in data_sets]``.
    backend : {"sequential", "joblib", "dask"}, optional
        Default ``"dask"`` when ``client`` is given, else ``"sequential"``.
    n_jobs : int, optional
        joblib workers (``-1``: all cores; default 2). Ignored by the other backends.
    client : distributed.Client, optional
        The Dask client whose workers run the solves (the ``distributed`` extra).
    **solve_kwargs
        Passed to every :func:`conic_dnn.solve` call (``method``, ``tol``, ``seed``,
        ``time_limit`` per problem, ...). Unknown names are refused before any work is sent
        out.

    Returns
    -------
    list of Result
        ``results[i]`` solves ``problems[i]``; identical whichever backend ran them.

    Raises
    ------
    TypeError, ValueError
        Bad ``problems``, ``backend``, ``n_jobs`` or ``client``, before any solve.
    """
    problems, backend = _check(problems, backend, n_jobs, client)
    if not problems:
        return []
    known = set(inspect.signature(solve).parameters) - {"problem"}
    unknown = sorted(set(solve_kwargs) - known)
    if unknown:
        raise TypeError(f"solve_kwargs: unknown argument(s) {unknown} of conic_dnn.solve "
                        f"(expected some of {sorted(known)})")
    if backend == "sequential":
        return [_solve_one(p, solve_kwargs) for p in problems]
    if backend == "joblib":
        try:
            from joblib import Parallel, delayed
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("backend='joblib' needs joblib: pip install joblib") from exc
        return list(Parallel(n_jobs=n_jobs or 2)(delayed(_solve_one)(p, solve_kwargs)
                                                 for p in problems))
    futures = client.map(partial(_solve_one, kwargs=solve_kwargs), problems, pure=False)
    return list(client.gather(futures))
