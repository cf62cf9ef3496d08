"""The plan a report reads (benchmark/results/reported_plan.py): which cells a changed manifest plans
differently, the one line that says so, and a lost stored plan that the sessions say was written.
Reports of an edited manifest are checked end to end in test_stored_plan.py."""

import pytest

from benchmark.catalog.plan import Planner
from benchmark.errors import BadInput
from benchmark.results.reported_plan import changed_line, check_not_recorded, differing_cells
from benchmark.runs.sessions import record_session
from benchmark.store.layout import Store
from benchmark.store.stored_plan import plan_doc
from tests.helpers import REPO


def test_cells_planned_differently_are_counted(monkeypatch):
    monkeypatch.setenv("KD_REPRO_CATALOG", str(REPO / "tests" / "catalog"))
    planner = Planner("smoke", cost=False)
    plan = planner.plan("klmse-table4")
    stored = plan_doc(plan, planner, [], {})
    assert differing_cells(stored, plan) == 0
    stored["cells"][0] = {**stored["cells"][0], "value": "top5"}  # one cell read another way
    stored["cells"][1] = {**stored["cells"][1], "points": []}  # one with other runs
    assert differing_cells(stored, plan) == 2


def test_the_line_says_what_changed_and_how_many_cells_differ():
    stored = {"manifest": {"sha256": "a", "catalog_sha256": "c"}}
    assert changed_line(stored, {"sha256": "b", "catalog_sha256": "c", "path": "m.yaml"}, 1) == \
        "m.yaml changed since these runs were planned: 1 cell differs; run reproduce to update"
    assert changed_line(stored, {"sha256": "a", "catalog_sha256": "d", "path": "m.yaml"}, 3).startswith(
        "the recipes or teachers that m.yaml names changed since these runs were planned: 3 cells differ;")
    assert changed_line(stored, {"sha256": "a", "catalog_sha256": "c", "path": "m.yaml"}, 0).startswith(
        "the suite's planning of m.yaml changed (same manifest, recipes and teachers)")


def test_a_lost_plan_the_sessions_recorded_is_bad_input(tmp_path):
    store = Store(tmp_path)
    check_not_recorded(store, "t", "smoke")  # no session: planned from today's manifest, no error
    record_session(store, ["t"], "smoke", plans=True)
    check_not_recorded(store, "t", "quick")  # another profile
    with pytest.raises(BadInput, match="missing, but the store's sessions say t was reproduced at the smoke"):
        check_not_recorded(store, "t", "smoke")
