"""Stage 0 — the problem and its three formulations.

Owns the data model and everything that needs no cone program: ``Problem`` (validated data,
depth, ``lam``, activation, loss, bias; problem.py), activations and convex losses
(activations.py, losses.py), the forward pass and weight checks (forward.py), the parameter /
activation / covariance losses and the min-norm weights (formulations.py), attraction/repulsion
forces (forces.py), the ``Network`` of plain weight matrices (network.py), the ``Result`` of a
solve (result.py), the rescaling symmetry and Gram reduction of the data (scaling.py), shared
linear algebra with its tolerances (linalg.py) and the exceptions
(errors.py).

Every module here is internal: the public names are re-exported by ``conic_dnn``.

May import: nothing else in conic_dnn.
"""
