"""Stage 2 — gradient training and the polish of a network.

Owns the multi-start L-BFGS and Adam baselines the exact solvers are measured against
(gradient.py, public as ``train_lbfgs`` / ``train_adam``), and turning neurons into a network
and making it no worse: min-norm output weights, rebalancing, an L-BFGS polish (refine.py),
and the same polish with the pre-activations at a kink held there (kinks.py).

Modules are internal; the training functions are re-exported by ``conic_dnn``.

May import: conic_dnn.core, conic_dnn.solvers.
"""
