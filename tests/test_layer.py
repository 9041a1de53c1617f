"""One layer's cone program: DPP re-solves and the ridge Parameter."""

import numpy as np
import pytest

import conic_dnn as cd
from conic_dnn.two_layer.cone_program import build_program


@pytest.fixture
def program(rng):
    p = cd.Problem(rng.normal(size=(5, 2)), rng.normal(size=(5, 1)), 2, 0.05)
    prog = build_program(p, "pattern")
    prog.set_data(p.lam, p.G0, Y=p.Y)
    return p, prog


def test_programs_are_dpp_for_every_representation(rng):
    for d, bias in [(2, 0.0), (5, 0.0), (2, 0.5)]:
        p = cd.Problem(rng.normal(size=(4, d)), rng.normal(size=(4, 1)), 2, 0.1, bias=bias)
        for rep in ("pattern", "lifted"):
            assert build_program(p, rep).problem.is_dpp()
    from conic_dnn.cone.layer_program import LayerProgram

    assert LayerProgram(4, cd.get_activation("relu"), last=False).problem.is_dpp()


def test_set_ridge_re_solves_without_recompiling(program):
    """The ridge is a Parameter: changing it keeps the compiled program, and a larger ridge can
    only lower the value (it enlarges G in matrix_frac), as the docstring promises."""
    p, prog = program
    v0 = prog.solve().value
    compiled = prog.problem._cache.param_prog
    prog.set_ridge(1e-4)
    v1 = prog.solve().value
    assert prog.problem._cache.param_prog is compiled
    assert v1 < v0
    prog.set_ridge(1e-8)
    assert prog.solve().value == pytest.approx(v0, rel=1e-7)
    assert prog.rho.value == pytest.approx(1e-8 * np.trace(p.G0) / p.N)


@pytest.mark.parametrize("bad", [-1.0, "1e-8", None, True])
def test_set_ridge_rejects_bad_values(program, bad):
    with pytest.raises(ValueError, match="ridge: expected a number >= 0"):
        program[1].set_ridge(bad)
