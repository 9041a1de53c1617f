"""Stage 3 — certificates and reports on a given network.

Owns the per-layer dual-cone certificates of layerwise optimality (certificate.py, public as
``conic_dnn.certify``), one layer's tests for one multiplier (layer_certificate.py), the search
for the best multiplier (multiplier.py), and sparsity reports with the paper's ``N^2/4`` tight
example (sparsity.py). Solvers call these on their results, so this stage sits below them.

Modules are internal; the public names are re-exported by ``conic_dnn``.

May import: conic_dnn.core, conic_dnn.solvers, conic_dnn.interop, conic_dnn.cone,
conic_dnn.neurons.
"""
