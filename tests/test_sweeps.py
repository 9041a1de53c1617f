"""Layer sweeps: the program cache (conic_dnn.deep.sweeps)."""

import numpy as np
import pytest

import conic_dnn as cd
from conic_dnn.deep.sweeps import SUBSPACE_ANGLE, LayerPrograms


def test_program_cache_keys_on_the_subspace_not_its_basis(rng):
    p = cd.Problem(rng.normal(size=(6, 2)), rng.normal(size=(6, 1)), 3, 0.01)
    progs = LayerPrograms(p, "pattern")
    H = rng.normal(size=(6, 2))  # a rank-2 input: a restricted program
    first = progs.get(1, H)
    R = np.linalg.qr(rng.normal(size=(2, 2)))[0]
    assert progs.get(1, H @ R) is first          # another basis of the same span
    assert progs.get(1, 3.0 * H) is first         # a rescaled input
    tilt = H + 1e-3 * rng.normal(size=H.shape)    # a different span: a new program
    assert progs.get(1, tilt) is not first
    assert progs.builds == 2
    full = progs.get(2, rng.normal(size=(6, 6)))  # full rank, last hidden layer: one program
    assert progs.get(2, rng.normal(size=(6, 6))) is full
    assert progs.builds == 3
    assert SUBSPACE_ANGLE < 1e-3


def test_sweeps_are_monotone_and_stop_at_the_deadline(rng):
    from conic_dnn.core.budget import Deadline
    from conic_dnn.deep.starts import initial_network
    from conic_dnn.deep.sweeps import run_sweeps

    p = cd.Problem(rng.normal(size=(4, 2)), rng.normal(size=(4, 1)), 3, 0.01)
    net = initial_network(p, "linear")
    run = run_sweeps(p, net, max_sweeps=3)
    h = np.array(run.history)
    assert np.all(np.diff(h) <= 0) and run.objective == h[-1]
    assert run.objective == pytest.approx(run.network.loss(p), rel=1e-12)
    cut = run_sweeps(p, net, max_sweeps=50, deadline=Deadline(1e-9))
    assert cut.timed_out and cut.sweeps == 1 and len(cut.history) == 2  # one layer step
