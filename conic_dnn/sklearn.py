"""scikit-learn estimators (optional ``sklearn`` extra): ``ConicNetRegressor`` and
``ConicNetClassifier`` fit an L2-regularised network with :func:`conic_dnn.solve` and keep the
certified result.

May import: the public package (``conic_dnn``) and scikit-learn. ``conic_dnn/__init__`` does not
import this module, so scikit-learn stays optional: ``from conic_dnn.sklearn import
ConicNetRegressor``.

The estimators follow scikit-learn's contract (parameters stored unchanged by ``__init__``,
``get_params`` / ``set_params`` from ``BaseEstimator``, fitted attributes ending in ``_``, input
validation, ``n_features_in_``), so they work in ``Pipeline`` and ``GridSearchCV`` (e.g. over
``lam``). Fitted attributes: ``result_`` (the :class:`conic_dnn.Result`), ``network_``,
``objective_`` (achieved regularised loss, an upper bound), ``lower_bound_`` (a valid lower bound,
``-inf`` if none) and ``certified_`` (the network is a global minimiser to ``tol``).

The regularised loss is the package's ``C(Z) + lam * sum ||W_l||_F^2`` with the squared error
``(1/N) ||Z - Y||_F^2``; features are not rescaled (put a ``StandardScaler`` in front: ``lam`` is
relative to the scale of ``X``).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from . import Problem, solve

__all__ = ["ConicNetRegressor", "ConicNetClassifier"]


class _ConicNetBase(BaseEstimator):
    """Shared parameters and the solve; see the subclasses."""

    def __init__(self, lam: float = 0.01, depth: int = 2, activation="relu", loss=None,
                 bias: float = 1.0, method: str | None = None, tol: float = 1e-6,
                 time_limit: float | None = None, seed: int = 0):
        self.lam = lam
        self.depth = depth
        self.activation = activation
        self.loss = loss
        self.bias = bias
        self.method = method
        self.tol = tol
        self.time_limit = time_limit
        self.seed = seed

    def _method(self, loss) -> str:
        if self.method is not None:
            return self.method
        # depth 2, squared loss: column generation directly (certified for one output at any
        # N whose arrangement can be enumerated, an upper bound beyond); the other losses go to
        # solve's "auto", which takes column generation too where it certifies fastest (every
        # built-in convex loss), the pattern program for planar data, alternating sweeps deeper
        name = loss if isinstance(loss, str) else getattr(loss, "name", "")
        return "column_generation" if self.depth == 2 and name == "mse" else "auto"

    def _solve(self, X: np.ndarray, Y: np.ndarray, loss: str):
        problem = Problem(X, Y, self.depth, self.lam, self.activation, loss, self.bias)
        res = solve(problem, self._method(loss), tol=self.tol, seed=self.seed,
                    time_limit=self.time_limit)
        self.result_ = res
        self.network_ = res.network
        self.objective_ = float(res.objective)
        self.lower_bound_ = float(res.lower_bound)
        self.certified_ = bool(res.certified)
        return self

    def _output(self, X) -> np.ndarray:
        check_is_fitted(self, "network_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.network_.predict(X)


class ConicNetRegressor(RegressorMixin, _ConicNetBase):
    """An L2-regularised ReLU (or other homogeneous) network fitted through its covariance cone.

    Parameters
    ----------
    lam : float, default 0.01
        Regularisation strength of ``lam * sum ||W_l||_F^2``.
    depth : int, default 2
        Number of weight matrices (2: one hidden layer, solved to global optimality).
    activation : str or activation, default "relu"
    loss : str or Loss, optional
        Default ``"mse"`` (``(1/N) ||Z - Y||_F^2``); e.g. ``"huber"``.
    bias : float, default 1.0
        The package's ``beta``: a constant input column of this value in every layer,
        regularised with the weights (0: no bias).
    method : str, optional
        Passed to :func:`conic_dnn.solve`. Default ``"column_generation"`` for depth 2 with the
        squared loss (fast for hundreds of samples), else ``"auto"`` (depth 2: column generation
        or the pattern program, whichever certifies faster, for every built-in convex loss;
        alternating sweeps for depth >= 3).
    tol, time_limit, seed
        As for :func:`conic_dnn.solve`.

    Attributes
    ----------
    result_ : conic_dnn.Result
    network_ : conic_dnn.Network
    objective_, lower_bound_ : float
    certified_ : bool
    n_features_in_ : int
    """

    def fit(self, X, y):
        """Fit on ``X`` (shape ``(N, d)``) and ``y`` (shape ``(N,)`` or ``(N, k)``)."""
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64)
        y = np.asarray(y, dtype=float)
        self._y_1d = y.ndim == 1
        return self._solve(X, y.reshape(len(y), -1), self.loss or "mse")

    def predict(self, X) -> np.ndarray:
        """Network output, shape ``(N,)`` (or ``(N, k)`` when fitted on 2-D ``y``)."""
        Z = self._output(X)
        return Z[:, 0] if self._y_1d else Z

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class ConicNetClassifier(ClassifierMixin, _ConicNetBase):
    """A classifier: an L2-regularised network on encoded labels, fitted through its cone.

    Labels (any type scikit-learn accepts: 0/1, strings, ...) are encoded for the loss:
    with ``"cross_entropy"`` as one-hot rows (``classes_`` order); with ``"mse"``,
    ``"logistic"`` or ``"hinge"`` as ``+-1``: one output (``+1`` = ``classes_[1]``) for two
    classes, one output per class (one-vs-rest) for more.

    Parameters
    ----------
    loss : str, optional
        Default ``"mse"`` on the ``+-1`` codes (least-squares classification, solved by column
        generation). ``"logistic"`` / ``"hinge"`` and ``"cross_entropy"`` (``predict_proba``
        where the loss is a likelihood: cross-entropy, and the logistic loss for two classes)
        go through ``solve(method="auto")``: at depth 2 column generation with the loss's
        Fenchel dual bound (``make_moons``, N = 60, two classes, ``lam = 0.01``: logistic
        certified in 0.2 s, hinge 0.7 s, cross-entropy, two outputs, 0.4 s, its pricing exact:
        the dual's rows sum to zero, so two classes are priced as one output and C classes
        over C - 1 output dimensions). One output is certified wherever the arrangement's
        cells can be enumerated (``rank [X, bias] <= 4`` up to N of a few hundred); several
        outputs (one-vs-rest, cross-entropy) get a valid bound, often certified.
    lam, depth, activation, bias, method, tol, time_limit, seed
        As for :class:`ConicNetRegressor`.

    Attributes
    ----------
    classes_ : ndarray, shape (C,)
    loss_ : str
        The loss actually used.
    result_, network_, objective_, lower_bound_, certified_, n_features_in_
        As for :class:`ConicNetRegressor`.
    """

    def fit(self, X, y):
        """Fit on ``X`` (shape ``(N, d)``) and class labels ``y`` (shape ``(N,)``)."""
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        enc = LabelEncoder().fit(y)
        self.classes_ = enc.classes_
        C = len(self.classes_)
        if C < 2:
            raise ValueError(f"y: expected at least 2 classes, got 1 class ({self.classes_[0]!r})")
        codes = enc.transform(y)
        loss = self.loss or "mse"
        loss_name = loss if isinstance(loss, str) else getattr(loss, "name", "")
        if loss_name == "cross_entropy":
            Y = np.eye(C)[codes]
        elif C == 2:
            Y = np.where(codes == 1, 1.0, -1.0)[:, None]
        else:
            Y = np.where(np.eye(C)[codes] == 1, 1.0, -1.0)
        self.loss_ = loss_name or loss
        return self._solve(X, Y, loss)

    def decision_function(self, X) -> np.ndarray:
        """Network output: shape ``(N,)`` for two classes (``> 0`` means ``classes_[1]``;
        with cross-entropy the logit difference), ``(N, C)`` for more."""
        Z = self._output(X)
        if len(self.classes_) == 2:
            return Z[:, 1] - Z[:, 0] if Z.shape[1] == 2 else Z[:, 0]
        return Z

    def predict(self, X) -> np.ndarray:
        """Predicted labels, shape ``(N,)``."""
        D = self.decision_function(X)
        idx = (D > 0).astype(int) if D.ndim == 1 else np.argmax(D, axis=1)
        return self.classes_[idx]

    def _has_proba(self) -> bool:
        check_is_fitted(self, "network_")
        return self.loss_ == "cross_entropy" or (self.loss_ == "logistic"
                                                  and len(self.classes_) == 2)

    @available_if(_has_proba)
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape ``(N, C)``: the model the loss fits (softmax of the
        outputs for cross-entropy; ``sigmoid(z)`` for the binary logistic loss)."""
        Z = self._output(X)
        if self.loss_ == "cross_entropy":
            Z = Z - Z.max(axis=1, keepdims=True)
            P = np.exp(Z)
            return P / P.sum(axis=1, keepdims=True)
        p1 = 0.5 * (1.0 + np.tanh(0.5 * Z[:, 0]))  # sigmoid without overflow
        return np.column_stack([1.0 - p1, p1])
