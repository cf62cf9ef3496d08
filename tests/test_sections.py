"""A manifest's sections checked (benchmark/catalog/sections.py): tolerances, figures and claims, each
bad field named."""


import pytest

from benchmark.catalog.sections import DEFAULT_TOLERANCES, resolve_tolerances
from benchmark.errors import BadInput


def test_tolerances_one_number_or_a_mapping_by_kind():
    assert resolve_tolerances(0.3, "m.yaml") == {k: 0.3 for k in DEFAULT_TOLERANCES}
    tol = resolve_tolerances({"loss": 0.2}, "m.yaml")
    assert tol == {**DEFAULT_TOLERANCES, "loss": 0.2}
    with pytest.raises(BadInput, match="tolerance.gaps"):
        resolve_tolerances({"gaps": 0.1}, "m.yaml")
    with pytest.raises(BadInput, match="tolerance.loss"):
        resolve_tolerances({"loss": -1}, "m.yaml")
    with pytest.raises(BadInput, match="tolerance"):
        resolve_tolerances(float("nan"), "m.yaml")


@pytest.mark.parametrize("figure, field", [
    ({"kind": "pie", "name": "x"}, "figures[0].kind"),  # was "bars", a kind since ATS Fig. 2 (issue 27)
    ({"kind": "bars", "name": "x"}, "figures[0].cols"),
    ({"kind": "bars", "name": "x", "cols": ["a"], "col": "a"}, "figures[0].col"),
    ({"kind": "curves", "name": "x", "cols": ["a"], "metrics": ["test_top5"]}, "figures[0].metrics"),
    ({"kind": "curves", "name": "x", "cols": ["a"], "metrics": []}, "figures[0].metrics"),
    ({"kind": "lines", "name": "x"}, "figures[0].cols"),
    ({"kind": "curves", "name": "x"}, "figures[0].cols"),
    ({"kind": "curves", "name": "x", "cols": ["a"], "col": "a"}, "figures[0].col"),
    ({"kind": "lines", "name": "../x", "cols": ["a"]}, "figures[0].name"),
    ({"kind": "lines", "name": "x", "cols": ["nope"]}, "figures[0].cols"),
    ({"kind": "analysis_vs_tau", "name": "x", "col": "a", "metrics": ["entropy"], "taus": [1, 2]}, "figures[0].metrics"),
    ({"kind": "analysis_vs_tau", "name": "x", "col": "a", "metrics": ["derived_std"], "taus": [1]}, "figures[0].taus"),
    ({"kind": "analysis_vs_tau", "name": "x", "col": "a", "metrics": ["derived_std"], "taus": [1, 2],
      "colour": "red"}, "figures[0].colour"),
])
def test_malformed_figures_are_named(figure, field):
    from benchmark.catalog.sections import check_figures
    from benchmark.errors import BadInput

    with pytest.raises(BadInput) as err:
        check_figures([figure], "m.yaml", ["r"], ["a", "b"])
    assert field in str(err.value)


@pytest.mark.parametrize("claim, field", [
    ({"text": "t", "compare": {"left": {"row": "A"}, "op": ">", "right": {"row": "B"}, "over": "columns",
                               "cols": ["nope"]}}, "claims[0].compare.cols"),
    ({"text": "t", "compare": {"left": {"row": "A"}, "op": ">", "right": {"row": "B"}, "over": "columns",
                               "rows": ["A"]}}, "claims[0].compare.rows"),
    ({"text": "t", "trend": {"row": "A", "direction": "increasing", "rows": ["A"]}}, "claims[0].trend"),
])
def test_malformed_claim_subsets_are_named(claim, field):
    from benchmark.catalog.sections import check_claims
    from benchmark.errors import BadInput

    with pytest.raises(BadInput) as err:
        check_claims([claim], "m.yaml", ["A", "B"], ["x", "y"])
    assert field in str(err.value)
