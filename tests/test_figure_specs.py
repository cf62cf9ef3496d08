"""A figure id's own figure spec (benchmark/catalog/figure_specs.py): the structural check's bad input
(field named), and which KD grid points ATS Fig. 3's scatter reads. Whole entries read through
benchmark/catalog/items.py: tests/test_items.py."""

import pytest

from benchmark.catalog.figure_specs import check_spec, flat_params, kd_scatter_reads
from benchmark.errors import BadInput

ROWS, COLS = ["T1", "T2", "KD", "NoKD"], ["Test acc", "S1"]


def test_flat_params_and_the_kd_points_the_scatter_reads():
    assert flat_params({"loss": {"tau": 2, "student_tau": 4}, "seed": 0}) == {"loss.tau": 2, "loss.student_tau": 4,
                                                                          "seed": 0}
    fig = {"taus": [1, 4]}
    assert kd_scatter_reads(fig, {"loss": {"tau": 4}})
    assert not kd_scatter_reads(fig, {"loss": {"tau": 2}})  # not one of the spec's temperatures
    assert not kd_scatter_reads(fig, {"loss": {"tau": 4, "student_tau": 1}})  # student's tau differs


def test_a_good_spec_passes_and_teacher_agreement_reads_its_groups_rows():
    check_spec({"kind": "variance_bars", "col": "Test acc", "rows": ["T1"], "tau": 1.0}, "p.yaml", ROWS, COLS)
    check_spec({"kind": "kd_scatter", "cols": ["S1"], "kd_row": "KD", "nokd_row": "NoKD", "taus": [1, 2]},
               "p.yaml", ROWS, COLS)
    spec = {"kind": "teacher_agreement", "col": "Test acc", "groups": [["T1", "T2"]], "tau": 4.0, "logits": "test"}
    check_spec(spec, "p.yaml", ROWS, COLS)
    assert spec["rows"] == ["T1", "T2"]


@pytest.mark.parametrize("spec, field", [
    ([], "spec"),
    ({"kind": "pie"}, "spec.kind"),
    ({"kind": "variance_bars", "col": "Test acc", "rows": ["T1"], "bins": 3}, "spec.bins"),
    ({"kind": "variance_bars", "col": "Test acc", "rows": ["T1"], "logits": "val"}, "spec.logits"),
    ({"kind": "variance_bars", "col": "Test acc", "rows": ["T9"]}, "spec.rows"),
    ({"kind": "variance_bars", "col": "S9", "rows": ["T1"]}, "spec.col"),
    ({"kind": "variance_bars", "col": "Test acc", "rows": ["T1"], "tau": 0}, "spec.tau"),
    ({"kind": "teacher_agreement", "col": "Test acc", "groups": [["T1"]]}, "spec.groups"),
    ({"kind": "kd_scatter", "cols": ["S1"], "kd_row": "KD", "nokd_row": "NoKD", "taus": [1, -2]}, "spec.taus"),
    ({"kind": "probability_bars", "col": "Test acc", "rows": ["T1"], "ats": {"tau1": 5.0}}, "spec.ats"),
])
def test_a_bad_spec_is_bad_input_naming_its_field(spec, field):
    with pytest.raises(BadInput) as err:
        check_spec(spec, "p.yaml", ROWS, COLS)
    assert err.value.field == field
