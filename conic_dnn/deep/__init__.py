"""Stage 5 — depth >= 3: a portfolio of starts and block-coordinate sweeps over the layers.

Owns the deep solve: the entry point and its Result (alternating.py), the portfolio of starts
(portfolio.py: seeded L-BFGS, sweeps from the best trained network and from the linear start,
finishing), the layer sweeps, the program cache and the deterministic work budget (sweeps.py),
the joint re-fit of the last two layers by column generation (joint.py), the moves that leave
a basin (moves.py: improving neuron, joint mode deletion, dead neurons), the winner's
certify-and-improve rounds (certified.py) and the starting networks (starts.py). The entry
point is ``conic_dnn.solve`` (solve.py at the top).

Modules are internal.

May import: conic_dnn.core, conic_dnn.solvers, conic_dnn.interop, conic_dnn.cone,
conic_dnn.neurons, conic_dnn.training, conic_dnn.certificates, conic_dnn.two_layer.
"""
