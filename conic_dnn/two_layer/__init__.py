"""Stage 4 — depth 2, solved to the global optimum.

Owns the exact two-layer solve through the cone program (cone_program.py), column generation
with its restricted group-lasso master and pricing / Fenchel dual bound (column_generation.py,
restricted_master.py, group_lasso.py, smooth_master.py, pricing.py, refine.py,
refine_outputs.py; the
hyperplane-arrangement cells and exact per-cell pricing in cells.py; the k > 1 pricing by a
work-capped branch and bound over output directions in sphere.py), and the verified dual points
every cone-program lower bound comes from (dual_bound.py). The entry points are
``conic_dnn.solve`` / ``solve_path`` (solve.py at the top) and
``conic_dnn.solve_column_generation``.

Modules are internal.

May import: conic_dnn.core, conic_dnn.solvers, conic_dnn.interop, conic_dnn.cone,
conic_dnn.neurons, conic_dnn.training, conic_dnn.certificates.
"""
