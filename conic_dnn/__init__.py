"""conic_dnn: exact analysis of L2-regularised deep networks through their covariance cone.

The pipeline, one subpackage per stage (ARCHITECTURE.md has the full map)::

    data -> core/          Problem, activations, losses, the three formulations, Network, Result
         -> cone/          sign patterns, the cone S_s (CovarianceCone, cone_constraints),
                           one layer's cone program, the dual cone
         -> neurons/       CP factorisation, Caratheodory / LP reduction, recovery, prune
         -> training/      L-BFGS / Adam baselines and the polish of a network
         -> certificates/  per-layer dual-cone certificates, sparsity reports, tight example
         -> two_layer/     depth 2 to the global optimum: cone program, column generation
         -> deep/          depth >= 3: alternating block-coordinate sweeps
    solve.py (solve, solve_path), sweep.py (solve_many), solvers.py (solver choice and
    fallbacks), interop.py (torch), sklearn.py (estimators, imported only by the user),
    cli.py (the conic-dnn command)

Everything below the top level is internal; the public API is what this module exports.
The mathematics is in docs/MATH.md and the module docstrings; the conventions (samples as
rows, the loss ``C(Z_L) + lam * sum ||W_l||_F^2`` with the MSE ``(1/N) ||Z_L - Y||_F^2``)
follow Jacot, Golikov, Hongler & Gabriel (2022), arXiv:2205.15809.
"""

from .certificates.certificate import Certificate, LayerCertificate, certify
from .certificates.sparsity import (
    LayerSparsity,
    SparsityReport,
    bipartite_incidence,
    sparsity_report,
    tight_example,
    tight_example_bound,
)
from .cone.covariance_cone import CovarianceCone, cone_constraints
from .core.activations import (
    Homogeneous,
    NonHomogeneous,
    absolute,
    get_activation,
    homogeneous,
    identity,
    leaky_relu,
    relu,
)
from .core.errors import (
    ConicDNNError,
    ConvergenceWarning,
    DecompositionWarning,
    InaccurateSolutionWarning,
    SizeLimitError,
    SolverFailedError,
)
from .core.forces import Forces, attraction_repulsion
from .core.formulations import (
    activations_from_weights,
    covariances_from_activations,
    loss_activations,
    loss_covariances,
    loss_parameters,
    min_norm_weights,
    range_residuals,
    range_violations,
)
from .core.losses import MSE, CrossEntropy, Hinge, Huber, Logistic, Loss, get_loss
from .core.network import Network
from .core.path import Path
from .core.problem import Problem
from .core.records import PACKAGE_VERSION, ProblemRecord
from .core.result import Result, load_result
from .interop import from_torch, to_torch
from .neurons.pruning import prune
from .solve import solve, solve_path
from .sweep import solve_many
from .training.gradient import TrainingResult, train_adam, train_lbfgs
from .two_layer.column_generation import solve_column_generation

__version__ = PACKAGE_VERSION

__all__ = [
    "Problem", "Network", "Result", "Path", "solve", "solve_path", "solve_many",
    "solve_column_generation",
    "CovarianceCone",
    "cone_constraints",
    "certify", "Certificate", "LayerCertificate",
    "prune", "sparsity_report", "SparsityReport", "LayerSparsity", "tight_example",
    "tight_example_bound", "bipartite_incidence", "from_torch", "to_torch",
    "train_lbfgs", "train_adam", "TrainingResult",
    "Homogeneous", "NonHomogeneous", "relu", "leaky_relu", "absolute", "identity",
    "homogeneous", "get_activation",
    "Loss", "MSE", "Logistic", "Hinge", "CrossEntropy", "Huber", "get_loss",
    "loss_parameters", "activations_from_weights", "loss_activations", "range_residuals",
    "range_violations", "min_norm_weights", "covariances_from_activations", "loss_covariances",
    "Forces", "attraction_repulsion",
    "ConicDNNError", "SolverFailedError", "SizeLimitError", "InaccurateSolutionWarning",
    "DecompositionWarning", "ConvergenceWarning",
    "load_result", "ProblemRecord",
]
