"""The README's API tour (its first ```python block) runs as written."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_has_an_api_tour():
    assert BLOCKS, "README.md: no ```python block"


@pytest.mark.slow
def test_readme_api_tour_runs(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    code = BLOCKS[0]
    if "distributed" in code and "Client(" in code.split("#")[0]:
        pytest.importorskip("distributed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(code, "README.md API tour", "exec"), {"__name__": "readme"})
