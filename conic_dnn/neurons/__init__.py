"""Stage 2 — from covariances back to explicit neurons, and pruning.

Owns completely-positive factorisation and the Caratheodory / LP reduction of a generator
family (decompose.py), reading neurons off a solved layer program (recovery.py), and pruning a
network to at most ``N(N+1)`` neurons per hidden layer without changing its covariances
(pruning.py, public as ``conic_dnn.prune``).

Modules are internal; ``prune`` is re-exported by ``conic_dnn``.

May import: conic_dnn.core, conic_dnn.cone, conic_dnn.interop.
"""
