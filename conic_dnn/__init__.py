"""conic_dnn: exact analysis of L2-regularised deep networks through their covariance cone.

The pipeline (one module per stage)::

    data -> Problem (problem.py)
         -> formulations: parameters / activations / covariances (formulations.py, forces.py)
         -> the cone S_s and one layer's cone program (cone.py, layer.py, solvers.py)
         -> solvers: global two-layer, block-coordinate for deeper (two_layer.py, alternating.py),
            column generation (column_generation.py, pricing.py, group_lasso.py); entry points
            solve / solve_path (solve.py)
         -> neuron decomposition: CP factorisation, Caratheodory / LP (decompose.py, recovery.py)
         -> Network: plain weight matrices (network.py); training baselines (training.py)
         -> certificates (dual_cone.py, certificate.py), sparsity reports (sparsity.py);
            PyTorch interop (interop.py); the CLI (cli.py)

The mathematics is in the module docstrings; the conventions (samples as rows, the loss
``C(Z_L) + lam * sum ||W_l||_F^2`` with the MSE ``(1/N) ||Z_L - Y||_F^2``) follow
Jacot, Golikov, Hongler & Gabriel (2022), arXiv:2205.15809.
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
from .core.problem import Problem
from .core.result import Result
from .interop import from_torch, to_torch
from .neurons.pruning import prune
from .solve import solve, solve_path
from .training.gradient import TrainingResult, train_adam, train_lbfgs
from .two_layer.column_generation import solve_column_generation

__version__ = "0.1.0"

__all__ = [
    "Problem", "Network", "Result", "solve", "solve_path", "solve_column_generation",
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
]
