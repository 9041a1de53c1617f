"""Stage 1 — the covariance cone ``S_s`` and one layer's cone program.

Owns the sign patterns and hyperplane arrangements (patterns.py), the cone as composable cvxpy
constraints in its pattern / lifted / planar-wedge representations (covariance_cone.py, public
through ``conic_dnn.CovarianceCone`` and ``conic_dnn.cone_constraints``), one hidden layer's
program built once with Parameters (layer_program.py), and membership tests for the dual cone
(dual_cone.py).

Modules are internal; ``CovarianceCone`` and ``cone_constraints`` are re-exported by
``conic_dnn``.

May import: conic_dnn.core, conic_dnn.solvers.
"""
