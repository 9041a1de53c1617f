"""Input validation at the API boundary: every bad argument raises ValueError or TypeError with an
"<argument>: expected ..., got ..." message, before any cone solver runs.

Complements tests/test_problem.py::test_problem_validation (the cases there are not repeated).
"""

import importlib
import os
import subprocess
import sys

import cvxpy as cp
import numpy as np
import pytest

import conic_dnn as cd
from conic_dnn import solvers
from conic_dnn.cone import layer_program as layer

# ``conic_dnn.solve`` is the function (it shadows the submodule of the same name)
solve_module = importlib.import_module("conic_dnn.solve")
two_layer_module = importlib.import_module("conic_dnn.two_layer.cone_program")

BASE = dict(X=np.arange(6.0).reshape(3, 2), Y=np.ones(3), depth=2, lam=0.1)


def _problem(**changes):
    kw = dict(BASE)
    kw.update(changes)
    return cd.Problem(**kw)


@pytest.fixture
def no_solver(monkeypatch):
    """Any cone solve fails the test: validation must happen before one."""

    def refuse(*args, **kwargs):  # pragma: no cover - only runs on a regression
        raise AssertionError("a cone solver ran although the arguments were invalid")

    monkeypatch.setattr(layer, "run", refuse)
    monkeypatch.setattr(solvers, "run", refuse)


# --- Problem: data --------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, exc, match", [
    # NaN / inf (the other sign and the other array than test_problem.py)
    (dict(X=np.array([[1.0, np.inf], [0, 1], [1, 1]])), ValueError,
     r"^X: expected finite values, got NaN or inf"),
    (dict(X=np.array([[1.0, -np.inf], [0, 1], [1, 1]])), ValueError,
     r"^X: expected finite values, got NaN or inf"),
    (dict(Y=[np.nan, 1.0, 1.0]), ValueError, r"^Y: expected finite values, got NaN or inf"),
    (dict(Y=np.full((3, 2), np.nan)), ValueError, r"^Y: expected finite values, got NaN"),
    # row count
    (dict(Y=np.ones((2, 1))), ValueError, r"^Y: expected 3 rows \(one per row of X\), got 2"),
    (dict(Y=np.ones(5)), ValueError, r"^Y: expected 3 rows .*got 5"),
    # empty data
    (dict(X=np.zeros((3, 0))), ValueError, r"^X: expected a non-empty array, got shape \(3, 0\)"),
    (dict(Y=np.zeros((3, 0))), ValueError, r"^Y: expected a non-empty array, got shape \(3, 0\)"),
    (dict(X=[], Y=[]), ValueError, r"^X: expected a 2-D array, got shape \(0,\)"),
    # wrong number of dimensions
    (dict(Y=np.ones((3, 1, 1))), ValueError, r"^Y: expected a 1-D or 2-D array, got shape"),
    (dict(Y=1.0), ValueError, r"^Y: expected a 1-D or 2-D array, got shape \(\)"),
    (dict(X=np.ones((3, 2, 2))), ValueError, r"^X: expected a 2-D array, got shape \(3, 2, 2\)"),
    # non-numeric dtypes
    (dict(X=np.array([[1, 2], [3, 4], [5, 6]], dtype=object)), TypeError,
     r"^X: expected a numeric array, got dtype object"),
    (dict(X=np.array([[1, "a"], [3, 4], [5, 6]], dtype=object)), TypeError,
     r"^X: expected a numeric array, got dtype object"),
    (dict(Y=["a", "b", "c"]), TypeError, r"^Y: expected a numeric array, got dtype <U1"),
    (dict(X="abc"), TypeError, r"^X: expected a numeric array, got str"),
    (dict(X=b"abc"), TypeError, r"^X: expected a numeric array, got bytes"),
    (dict(X=None), TypeError, r"^X: expected a numeric array, got NoneType"),
    (dict(Y=None), TypeError, r"^Y: expected a numeric array, got NoneType"),
    (dict(X=[[1.0, 2.0], [3.0]]), TypeError, r"^X: expected a numeric array, got list"),
    (dict(X=np.ones((3, 2)) + 1j), TypeError, r"^X: expected a real array, got dtype complex"),
    (dict(X=np.zeros((3, 2), dtype="datetime64[D]")), TypeError,
     r"^X: expected a numeric array, got dtype datetime64"),
    # numpy counts timedelta64 as a number (a signed integer): refused all the same
    (dict(X=np.ones((3, 2), dtype="timedelta64[s]")), TypeError,
     r"^X: expected a numeric array, got dtype timedelta64"),
    (dict(Y=np.ones(3, dtype="timedelta64[ms]")), TypeError,
     r"^Y: expected a numeric array, got dtype timedelta64"),
    (dict(Y=np.ones(3) + 0j), TypeError, r"^Y: expected a real array, got dtype complex"),
    (dict(X=np.zeros((3, 2), dtype=[("a", float), ("b", float)])), TypeError,
     r"^X: expected a numeric array, got dtype"),
    # masked arrays: the mask would be dropped silently by np.asarray
    (dict(X=np.ma.masked_array(np.ones((3, 2)), mask=[[0, 1], [0, 0], [0, 0]])), TypeError,
     r"^X: expected a plain array, got a numpy masked array"),
    (dict(Y=np.ma.masked_array(np.ones(3))), TypeError,
     r"^Y: expected a plain array, got a numpy masked array"),
])
def test_data_validation(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        _problem(**kwargs)


def test_boolean_data_is_read_as_zero_one():
    # booleans are numbers here (binary features / labels), unlike in weight matrices
    p = _problem(X=np.array([[True, False], [False, True], [True, True]]))
    np.testing.assert_array_equal(p.X, [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])


def test_valid_data_variants_are_accepted():
    p = _problem(X=[[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]], Y=np.ones((3, 2)), lam=np.float32(0.5),
                 depth=np.int64(3))
    assert (p.N, p.d, p.k, p.depth) == (3, 2, 2, 3)
    assert isinstance(p.lam, float) and isinstance(p.depth, int)


# --- Problem: scalars and names -------------------------------------------------------------

@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(lam=-1.0), ValueError, r"^lam: expected a finite number > 0, got -1\.0"),
    (dict(lam=-0.0), ValueError, r"^lam: expected a finite number > 0, got -0\.0"),
    (dict(lam=np.inf), ValueError, r"^lam: expected a finite number > 0, got inf"),
    (dict(lam=-np.inf), ValueError, r"^lam: expected a finite number > 0, got -inf"),
    (dict(lam=None), TypeError, r"^lam: expected a positive number, got NoneType"),
    (dict(lam=True), TypeError, r"^lam: expected a positive number, got bool"),
    (dict(lam=1j), TypeError, r"^lam: expected a positive number, got complex"),
    (dict(lam=np.array([0.1])), TypeError, r"^lam: expected a positive number, got ndarray"),
    (dict(depth=0), ValueError, r"^depth: expected an integer >= 2 .*got 0"),
    (dict(depth=-3), ValueError, r"^depth: expected an integer >= 2 .*got -3"),
    (dict(depth=2.5), TypeError, r"^depth: expected an integer >= 2, got float"),
    (dict(depth=np.float64(3.0)), TypeError, r"^depth: expected an integer >= 2, got float64"),
    (dict(depth=True), TypeError, r"^depth: expected an integer >= 2, got bool"),
    (dict(depth="3"), TypeError, r"^depth: expected an integer >= 2, got str"),
    (dict(depth=None), TypeError, r"^depth: expected an integer >= 2, got NoneType"),
    (dict(bias=np.nan), ValueError, r"^bias: expected a finite number >= 0, got nan"),
    (dict(bias="1"), TypeError, r"^bias: expected a number >= 0, got str"),
])
def test_scalar_validation(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        _problem(**kwargs)


@pytest.mark.parametrize("name", ["tanh", "ReLu6", "", "sigmoid"])
def test_unknown_activation_lists_valid_names(name):
    with pytest.raises(ValueError, match=r"^activation: expected one of relu, leaky_relu, abs, "
                                         r"identity .*got " + repr(name)):
        _problem(activation=name)


@pytest.mark.parametrize("name", ["l1", "MAE", "", "squared"])
def test_unknown_loss_lists_valid_names(name):
    with pytest.raises(ValueError, match=r"^loss: expected one of mse, logistic, hinge, "
                                         r"cross_entropy, huber or a Loss object, got "
                                         + repr(name)):
        _problem(loss=name)


@pytest.mark.parametrize("spec, arg", [(None, "activation"), (3, "activation"),
                                       (None, "loss"), (3, "loss"), (np.tanh, "loss")])
def test_activation_and_loss_wrong_type(spec, arg):
    with pytest.raises(TypeError, match=rf"^{arg}: expected a name.*, got "):
        _problem(**{arg: spec})


def test_names_are_case_and_space_insensitive():
    p = _problem(activation=" ReLU ", loss="MSE")
    assert p.activation.name == "relu" and p.loss.name == "mse"


# --- solve(): names and options -------------------------------------------------------------

@pytest.mark.parametrize("method", ["exact", "PATTERN", "", None, 2])
def test_unknown_method_lists_valid_names(method, no_solver):
    with pytest.raises(ValueError, match=r"^method: expected one of auto, pattern, lifted, "
                                         r"column_generation, got " + repr(method)):
        cd.solve(_problem(), method=method)


@pytest.mark.parametrize("solver", ["GUROBI", "ecos", "", "clarabel "])
def test_unknown_solver_lists_valid_names(solver):
    p = _problem()
    with pytest.raises(ValueError, match=r"^solver: expected one of CLARABEL, MOSEK, SCS or None, "
                                         r"got " + repr(solver)):
        cd.solve(p, solver=solver)


def test_solver_wrong_type():
    with pytest.raises(TypeError, match=r"^solver: expected a solver name or None, got int"):
        cd.solve(_problem(), solver=3)


def test_solver_name_is_case_insensitive():
    assert cd.solve(_problem(Y=[0.0, 1.0, 2.0]), solver="clarabel", polish=False).solver == \
        "CLARABEL"


def test_mosek_not_available_is_a_clear_value_error():
    p = _problem()
    if "MOSEK" not in cp.installed_solvers():
        match = r"^solver: expected an installed solver \(CLARABEL, SCS\) or None, got 'MOSEK': " \
                r"MOSEK is not installed"
    elif not solvers.mosek_licensed():
        match = r"^solver: expected a licensed solver or None, got 'MOSEK': .*license"
    else:
        pytest.skip("MOSEK is installed and licensed here")
    with pytest.raises(ValueError, match=match):
        cd.solve(p, solver="MOSEK")
    with pytest.raises(ValueError, match=match.replace("'MOSEK'", "'mosek'")):
        solvers.run(cp.Problem(cp.Minimize(cp.Variable() ** 2)), solver="mosek")


def test_mosek_installed_but_unlicensed(monkeypatch):
    monkeypatch.setattr(solvers, "_installed", lambda: frozenset({"CLARABEL", "SCS", "MOSEK"}))
    monkeypatch.setattr(solvers, "mosek_licensed", lambda: False)
    assert solvers.available_solvers() == ["CLARABEL", "SCS"]
    with pytest.raises(ValueError, match=r"^solver: expected a licensed solver or None, got "
                                         r"'MOSEK': MOSEK is installed but no license "
                                         r".*mosek\.lic"):
        solvers.run(cp.Problem(cp.Minimize(cp.Variable() ** 2)), solver="MOSEK")


@pytest.mark.parametrize("func", [lambda z: z**2, np.tanh, abs], ids=["lambda", "tanh", "abs"])
def test_nonhomogeneous_callable_rejected_by_solve(func, no_solver):
    p = _problem(activation=func)
    assert not p.is_homogeneous
    with pytest.raises(ValueError, match=r"^activation: solve needs a positively homogeneous "
                                         r"activation: expected one of relu, leaky_relu, abs, "
                                         r"identity.*, got the non-homogeneous"):
        cd.solve(p)


def test_plain_def_callable_named_in_message(no_solver):
    def square(z):
        return z * z

    with pytest.raises(ValueError, match=r"got the non-homogeneous 'square'"):
        cd.solve(_problem(activation=square, depth=3))


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(tol=0), ValueError, r"^tol: expected a number in \(0, 1\), got 0"),
    (dict(tol=1.5), ValueError, r"^tol: expected a number in \(0, 1\), got 1\.5"),
    (dict(tol=float("nan")), ValueError, r"^tol: expected a number in \(0, 1\), got nan"),
    (dict(tol="1e-6"), ValueError, r"^tol: expected a number in \(0, 1\), got '1e-6'"),
    (dict(solver_options=[1]), TypeError, r"^solver_options: expected a dict or None, got list"),
])
def test_solve_option_validation(kwargs, exc, match, no_solver):
    with pytest.raises(exc, match=match):
        cd.solve(_problem(), **kwargs)


def test_solve_needs_a_problem(no_solver):
    with pytest.raises(TypeError, match=r"^problem: expected a conic_dnn\.Problem, got tuple"):
        cd.solve((BASE["X"], BASE["Y"]))


@pytest.mark.parametrize("kwargs, match", [
    (dict(sweep="sideways"), r"^sweep: expected one of backward, forward, both, got 'sideways'"),
    (dict(max_sweeps=0), r"^max_sweeps: expected a positive integer, got 0"),
    (dict(init="zeros"), r"^init: expected a Network, 'linear' or 'random', got 'zeros'"),
])
def test_deep_option_validation(kwargs, match, no_solver):
    with pytest.raises(ValueError, match=match):
        cd.solve(_problem(depth=3), **kwargs)


def test_seed_validated_before_solving():
    with pytest.raises((TypeError, ValueError), match=r"^seed: expected an integer"):
        cd.solve(_problem(Y=[0.0, 1.0, 2.0]), seed="a")


# --- size guard -----------------------------------------------------------------------------

def _full_rank(N, depth=2, activation="relu", d=None):
    rng = np.random.default_rng(N)
    return cd.Problem(rng.normal(size=(N, d or N)), rng.normal(size=N), depth, 0.1,
                      activation=activation)


def test_pattern_program_size_estimate():
    size = solve_module.pattern_program_size
    assert size(_full_rank(4)) == 2**4 * 10
    assert size(_full_rank(11)) == 2**11 * 66 > solve_module.MAX_PATTERN_SIZE
    # low-rank data: only the cells of the arrangement (2 * sum_{i<r} C(N-1, i)), r x r blocks
    low = _full_rank(20, d=2)
    assert size(low) == 2 * (1 + 19) * 3
    # deeper layers live in R^N whatever the data
    assert size(low, first_layer=False) == 2**20 * 210


def test_size_guard_names_the_lifted_relaxation(no_solver):
    with pytest.raises(cd.SizeLimitError,
                       match=r"^method: the pattern program for N = 11 would have ~135,168 block "
                             r"variables \(limit 60,000\); use method='lifted' \(a relaxation\)"
                             r".*force=True") as ei:
        cd.solve(_full_rank(11), method="pattern")
    assert isinstance(ei.value, ValueError) and isinstance(ei.value, cd.ConicDNNError)
    # depth >= 3: the hidden layers use every pattern of R^N even for low-rank data
    with pytest.raises(cd.SizeLimitError, match="method='lifted'"):
        cd.solve(_full_rank(11, depth=3, d=2), method="pattern")


def test_force_and_identity_bypass_the_guard(monkeypatch):
    calls = []

    def stub(problem, rep, *args, **kwargs):
        calls.append((problem.N, rep))
        return "stub"

    monkeypatch.setattr(two_layer_module, "solve_two_layer", stub)
    assert cd.solve(_full_rank(11), method="pattern", force=True) == "stub"
    assert cd.solve(_full_rank(11, activation="identity"), method="pattern") == "stub"
    # beyond the pattern program's time estimate auto picks column generation (exact for one
    # output); with solver_options it stays on the cone programs
    assert solve_module.auto_method(_full_rank(11)) == ["column_generation"]
    assert cd.solve(_full_rank(11), method="auto", solver_options={}) == "stub"
    # a planar first layer (rank(H0) = 2): column generation first, the exact pattern
    # program second (its fallback)
    assert solve_module.auto_method(_full_rank(11, d=2)) == ["column_generation", "pattern"]
    assert cd.solve(_full_rank(11, d=2), method="pattern") == "stub"
    assert calls == [(11, "pattern"), (11, "pattern"), (11, "lifted"), (11, "pattern")]


def test_guard_with_a_lowered_limit(monkeypatch, rng):
    monkeypatch.setattr(solve_module, "MAX_PATTERN_SIZE", 10)
    p = cd.Problem(rng.normal(size=(3, 2)), rng.normal(size=3), 2, 0.1)
    with pytest.raises(cd.SizeLimitError, match=r"limit 10\)"):
        cd.solve(p, method="pattern")
    with pytest.raises(cd.SizeLimitError):
        cd.solve(p)  # auto -> pattern for N <= 8
    res = cd.solve(p, method="pattern", force=True, polish=False)
    assert res.network.loss(p) == pytest.approx(res.objective, rel=1e-9)
    assert cd.solve(p, method="lifted", polish=False).method == "lifted"


# --- weights that do not chain (loss_parameters) --------------------------------------------

@pytest.fixture
def p23():
    rng = np.random.default_rng(7)
    return cd.Problem(rng.normal(size=(4, 2)), rng.normal(size=(4, 1)), 3, 0.1)


@pytest.mark.parametrize("weights, exc, match", [
    ([np.ones((5, 2)), np.ones((3, 4)), np.ones((1, 3))], ValueError,
     r"^weights\[1\]: expected 5 columns \(width of the previous layer\), got shape \(3, 4\)"),
    ([np.ones((5, 3)), np.ones((3, 5)), np.ones((1, 3))], ValueError,
     r"^weights\[0\]: expected 2 columns \(input dimension d\), got shape \(5, 3\)"),
    ([np.ones((5, 2)), np.ones((3, 5)), np.ones((1, 4))], ValueError,
     r"^weights\[2\]: expected 3 columns .*got shape \(1, 4\)"),
    ([np.ones((5, 2)), np.ones((3, 5)), np.ones((2, 3))], ValueError,
     r"^weights\[-1\]: expected 1 rows \(output dimension k\), got 2"),
    ([np.ones((5, 2)), np.ones((1, 5))], ValueError,
     r"^weights: expected 3 weight matrices \(depth\), got 2"),
    ([], ValueError, r"^weights: expected 3 weight matrices \(depth\), got 0"),
    ([np.ones((5, 2)), np.ones(5), np.ones((1, 3))], ValueError,
     r"^weights\[1\]: expected a 2-D array, got shape \(5,\)"),
    ([np.ones((5, 2)), np.ones((3, 5, 1)), np.ones((1, 3))], ValueError,
     r"^weights\[1\]: expected a 2-D array, got shape \(3, 5, 1\)"),
    ([np.full((5, 2), np.nan), np.ones((3, 5)), np.ones((1, 3))], ValueError,
     r"^weights\[0\]: expected finite values, got NaN or inf"),
    ([np.ones((5, 2)), np.full((3, 5), "a"), np.ones((1, 3))], TypeError,
     r"^weights\[1\]: expected a numeric array, got dtype <U1"),
    ([np.ones((5, 2)), np.ones((3, 5), dtype=object), np.ones((1, 3))], TypeError,
     r"^weights\[1\]: expected a numeric array, got dtype object"),
    ([np.ones((5, 2)), np.ones((3, 5), dtype="timedelta64[s]"), np.ones((1, 3))], TypeError,
     r"^weights\[1\]: expected a numeric array, got dtype timedelta64"),
    ([np.ones((5, 2)), np.ones((3, 5), dtype="datetime64[D]"), np.ones((1, 3))], TypeError,
     r"^weights\[1\]: expected a numeric array, got dtype datetime64"),
    ([np.ones((5, 2), dtype=bool), np.ones((3, 5)), np.ones((1, 3))], TypeError,
     r"^weights\[0\]: expected a numeric array, got dtype bool"),
    ([np.ma.masked_array(np.ones((5, 2))), np.ones((3, 5)), np.ones((1, 3))], TypeError,
     r"^weights\[0\]: expected a plain array, got a numpy masked array"),
    (np.ones((3, 2)), TypeError, r"^weights: expected a list of 2-D arrays, got ndarray"),
    (None, TypeError, r"^weights: expected a list of 2-D arrays, got NoneType"),
    ((w for w in [np.ones((5, 2))]), TypeError,
     r"^weights: expected a list of 2-D arrays, got generator"),
])
def test_weights_must_chain(p23, weights, exc, match):
    with pytest.raises(exc, match=match):
        cd.loss_parameters(p23, weights)


def test_weights_bias_column(p23):
    pb = p23.replace(bias=0.5)
    with pytest.raises(ValueError, match=r"^weights\[0\]: expected 3 columns \(input dimension d "
                                         r"\+ 1 bias column\), got shape \(5, 2\)"):
        cd.loss_parameters(pb, [np.ones((5, 2)), np.ones((3, 5)), np.ones((1, 3))])
    # and with the bias columns it is accepted
    assert np.isfinite(cd.loss_parameters(pb, [np.ones((5, 3)), np.ones((3, 6)),
                                               np.ones((1, 4))]))


def test_ragged_weights_name_the_argument(p23):
    with pytest.raises((TypeError, ValueError), match=r"^weights\[0\]: expected"):
        cd.loss_parameters(p23, [[[1.0, 2.0], [3.0]], np.ones((3, 2)), np.ones((1, 3))])


@pytest.mark.filterwarnings("ignore:Casting complex values")
def test_complex_weights_rejected(p23):
    W = [np.ones((5, 2)) * (1 + 1j), np.ones((3, 5)), np.ones((1, 3))]
    with pytest.raises(TypeError, match=r"^weights\[0\]: expected a real array"):
        cd.loss_parameters(p23, W)


def test_other_formulations_check_shapes(p23):
    with pytest.raises(ValueError, match=r"^activations: expected 3 arrays \(depth\), got 1"):
        cd.loss_activations(p23, [np.zeros((4, 2))])
    with pytest.raises(ValueError, match=r"^activations\[1\]: expected shape \(4, n\), got "
                                         r"\(3, 2\)"):
        cd.loss_activations(p23, [np.zeros((4, 2)), np.zeros((3, 2)), np.zeros((4, 1))])
    with pytest.raises(ValueError, match=r"^activations\[-1\]: expected shape \(4, 1\)"):
        cd.loss_activations(p23, [np.zeros((4, 2)), np.zeros((4, 2)), np.zeros((4, 2))])
    with pytest.raises(ValueError, match=r"^covariances: expected a list of 2 \(K, G\) pairs, "
                                         r"got 1 pairs"):
        cd.loss_covariances(p23, [(np.eye(4), np.eye(4))], np.zeros((4, 1)))
    with pytest.raises(ValueError, match=r"^covariances\[0\]\[1\] \(G_1\): expected shape "
                                         r"\(4, 4\), got \(3, 3\)"):
        cd.loss_covariances(p23, [(np.eye(4), np.eye(3)), (np.eye(4), np.eye(4))],
                            np.zeros((4, 1)))
    with pytest.raises(ValueError, match=r"^output: expected shape \(4, 1\), got \(4, 2\)"):
        cd.loss_covariances(p23, [(np.eye(4), np.eye(4))] * 2, np.zeros((4, 2)))


def test_loss_covariances_checks_every_pair_shape(p23):
    with pytest.raises(ValueError, match=r"^covariances\[1\]\[0\] \(K_2\): expected shape "
                                         r"\(4, 4\), got \(3, 3\)"):
        cd.loss_covariances(p23, [(np.eye(4), np.eye(4)), (np.eye(3), np.eye(4))],
                            np.zeros((4, 1)))


@pytest.mark.parametrize("kw, match", [({"sweep": "sideways"}, r"^sweep: expected one of"),
                                       ({"max_sweeps": 0}, r"^max_sweeps: expected"),
                                       ({"n_starts": 0}, r"^n_starts: expected")])
def test_deep_options_checked_at_depth_two(kw, match):
    p = cd.Problem(np.eye(3), np.ones(3), 2, 0.1)
    with pytest.raises(ValueError, match=match):
        cd.solve(p, **kw)


# --- size guards fire before any big allocation (#19) ---------------------------------------

_GUARDS_UNDER_RLIMIT = r"""
import resource, sys
import numpy as np, cvxpy as cp
import conic_dnn as cd
from conic_dnn.certificates.sparsity import tight_example

vm = [l for l in open("/proc/self/status") if l.startswith("VmSize:")][0]
now = int(vm.split()[1]) * 1024
limit = now + 512 * 2**20          # what is mapped now + 512 MiB
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
try:                               # the limit bites: 1 GiB cannot be had
    np.ones(2**27)
    sys.exit("rlimit not effective")
except MemoryError:
    pass
checks = []
try:                               # 2 x ~30 GiB before the guard
    tight_example(2000)
except cd.SizeLimitError as e:
    checks.append("tight_example_bound" in str(e))
rng = np.random.default_rng(0)     # N = 300, width 20,000: a 14 GB generator matrix
p = cd.Problem(rng.normal(size=(300, 3)), rng.normal(size=(300, 1)), 2, 0.1)
W = [rng.normal(size=(20000, 3)), rng.normal(size=(1, 20000))]
try:
    cd.prune(p, W)
except cd.SizeLimitError as e:
    checks.append("hidden layer 1" in str(e) and "max_bytes" in str(e))
K = cp.Variable((30, 30), symmetric=True); G = cp.Variable((30, 30), symmetric=True)
try:                               # 2^30 sign patterns
    cd.cone_constraints(K, G, "relu")
except cd.SizeLimitError as e:
    checks.append("lifted" in str(e))
print("guards", checks)
sys.exit(0 if checks == [True, True, True] else 1)
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc: Linux")
def test_size_guards_fire_before_allocating_under_a_memory_limit():
    """tight_example(2000), pruning a width-20,000 layer on N = 300, cone_constraints at
    N = 30: each raises SizeLimitError naming the way out, in a process whose address space
    is limited to what it has mapped + 512 MiB (so any big allocation would be a
    MemoryError instead, which the script checks first)."""
    proc = subprocess.run([sys.executable, "-c", _GUARDS_UNDER_RLIMIT], capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "guards [True, True, True]" in proc.stdout
