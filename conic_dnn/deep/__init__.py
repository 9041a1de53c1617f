"""Stage 5 — depth >= 3: block-coordinate minimisation over the layers.

Owns the alternating sweeps over layer programs to a layerwise-certified local minimum
(alternating.py). The entry point is ``conic_dnn.solve`` (solve.py at the top).

Modules are internal.

May import: conic_dnn.core, conic_dnn.solvers, conic_dnn.interop, conic_dnn.cone,
conic_dnn.neurons, conic_dnn.training, conic_dnn.certificates.
"""
