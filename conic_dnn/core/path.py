"""The result of a regularisation path: a read-only sequence of :class:`Result` with the path's
columns (lams, objectives, lower bounds, gaps, widths) as arrays and a ``plot``.

``Path`` is a ``collections.abc.Sequence`` of ``Result``, so code that indexed, iterated or took
``len`` of the list :func:`conic_dnn.solve_path` used to return keeps working.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .result import Result

__all__ = ["Path"]


class Path(Sequence):
    """One :class:`Result` per regularisation strength, in the order solved.

    Parameters
    ----------
    lams : array_like, shape (n,)
        The regularisation strength of each result.
    results : sequence of Result, length n

    Attributes
    ----------
    lams : ndarray, shape (n,)
    objectives : ndarray, shape (n,)
        Regularised loss of each returned network (achieved: upper bounds).
    lower_bounds : ndarray, shape (n,)
        Each result's lower bound (``-inf`` where none is available).
    gaps : ndarray, shape (n,)
        ``objectives - lower_bounds`` (``inf`` without a bound).
    rel_gaps : ndarray, shape (n,)
        ``gaps / |objectives|`` (``inf`` without a bound; ``0`` for a zero gap at objective 0).
    certified : ndarray of bool, shape (n,)
    widths : list of tuple of int
        Hidden widths of each network.
    """

    def __init__(self, lams, results):
        results = tuple(results)
        lams = np.array(lams, dtype=float).reshape(-1)
        if not all(isinstance(r, Result) for r in results):
            raise TypeError("results: expected a sequence of conic_dnn.Result")
        if lams.size != len(results):
            raise ValueError(f"lams: expected {len(results)} values (one per result), got "
                             f"{lams.size}")
        lams.flags.writeable = False
        self._results = results
        self._lams = lams

    # --- Sequence ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._results)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return Path(self._lams[i], self._results[i])
        return self._results[i]

    def __repr__(self) -> str:
        return (f"Path(n={len(self)}, lams=[{self._lams.min():.3g} .. {self._lams.max():.3g}], "
                f"certified={int(self.certified.sum())}/{len(self)})" if len(self)
                else "Path(n=0)")

    def __str__(self) -> str:
        head = f"{'lam':>10} | {'objective':>14} | {'lower bound':>14} | {'rel. gap':>9} | " \
               f"{'cert.':>5} | widths"
        rows = [head, "-" * len(head)]
        for lam, r, g in zip(self._lams, self._results, self.rel_gaps):
            rows.append(f"{lam:10.4g} | {r.objective:14.8g} | {r.lower_bound:14.8g} | "
                        f"{g:9.2e} | {'yes' if r.certified else 'no':>5} | {r.widths}")
        return "\n".join(rows)

    # --- columns -------------------------------------------------------------------------
    @property
    def lams(self) -> np.ndarray:
        return self._lams

    @property
    def results(self) -> tuple:
        return self._results

    def _column(self, name: str, dtype=float) -> np.ndarray:
        return np.array([getattr(r, name) for r in self._results], dtype=dtype)

    @property
    def objectives(self) -> np.ndarray:
        return self._column("objective")

    @property
    def lower_bounds(self) -> np.ndarray:
        return self._column("lower_bound")

    @property
    def gaps(self) -> np.ndarray:
        return self._column("gap")

    @property
    def rel_gaps(self) -> np.ndarray:
        gaps, obj = self.gaps, np.abs(self.objectives)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(gaps == 0, 0.0, gaps / obj)
        return np.where(np.isnan(rel), np.inf, rel)

    @property
    def certified(self) -> np.ndarray:
        return self._column("certified", bool)

    @property
    def widths(self) -> list:
        return [tuple(r.widths) for r in self._results]

    # --- figure --------------------------------------------------------------------------
    def plot(self, axes=None):
        """Objective and lower bound (top) and hidden widths (bottom) against ``lam``.

        Log scale on ``lam`` (and on the objective when it spans more than a decade). Needs
        matplotlib (extra ``plot``), imported here only.

        Parameters
        ----------
        axes : pair of matplotlib Axes, optional
            Where to draw; default a new figure with two stacked panels.

        Returns
        -------
        (Figure, (Axes, Axes))
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("Path.plot needs matplotlib: pip install 'conic-dnn[plot]'") \
                from exc
        if axes is None:
            fig, axes = plt.subplots(2, 1, sharex=True, figsize=(6, 5.5))
        else:
            fig = axes[0].figure
        top, bottom = axes
        lams, obj, lb = self._lams, self.objectives, self.lower_bounds
        top.plot(lams, obj, "o-", label="objective (network found)")
        has_lb = np.isfinite(lb)
        if has_lb.any():
            top.plot(lams[has_lb], lb[has_lb], "x--", label="lower bound")
        top.set_xscale("log")
        pos = obj[obj > 0]
        if pos.size and pos.max() > 10 * pos.min():
            top.set_yscale("log")
        elif np.all(obj >= 0):
            top.set_ylim(bottom=0)  # a linear axis starts at 0: no truncation
        top.set_ylabel("regularised loss")
        top.set_title("Regularisation path: objective, bound and widths")
        top.legend()
        widths = self.widths
        n_layers = max((len(w) for w in widths), default=0)
        for layer in range(n_layers):
            ws = [w[layer] if layer < len(w) else np.nan for w in widths]
            bottom.plot(lams, ws, "s-", label=f"hidden layer {layer + 1}")
        bottom.set_xscale("log")
        bottom.set_xlabel("lam (regularisation strength)")
        bottom.set_ylabel("hidden width (neurons)")
        bottom.set_ylim(bottom=0)
        if n_layers:
            bottom.legend()
        fig.tight_layout()
        return fig, (top, bottom)
