"""plan --json's summary (benchmark/catalog/summary.py): the hours split by bound, and a planned table's
counts. test_accel.py checks the measured-throughput line."""

from types import SimpleNamespace

from benchmark.catalog.plan import Planner
from benchmark.catalog.summary import hours_by_bound, main_bound, table_summary
from tests.helpers import REPO


def test_hours_by_bound_largest_first():
    jobs = [SimpleNamespace(bound="compute", gpu_hours=1.0), SimpleNamespace(bound="data", gpu_hours=2.5),
            SimpleNamespace(bound=None, gpu_hours=0.25), SimpleNamespace(bound="compute", gpu_hours=2.0)]
    assert list(hours_by_bound(jobs).items()) == [("compute", 3.0), ("data", 2.5), ("none", 0.25)]
    assert main_bound(jobs) == "compute" and main_bound([]) is None


def test_a_tables_summary_counts_its_cells_jobs_and_hours(monkeypatch):
    monkeypatch.setenv("KD_REPRO_CATALOG", str(REPO / "tests" / "catalog"))
    planner = Planner("smoke")
    plan = planner.plan("klmse-table4")
    s = table_summary(plan, planner, detail=False)
    jobs = [planner.jobs[j] for j in plan.job_ids]
    assert (s["table"], s["profile"], s["pending"]) == ("klmse-table4", "smoke", plan.job_ids)
    assert s["counts"] == {"cells": 7, "jobs": 7, "pending": 7, "cited_cells": 0, "waiting_cells": 0}
    assert s["gpu_hours"] == s["pending_gpu_hours"] == round(sum(j.gpu_hours for j in jobs), 4)
    assert set(s["gpu_hours_with"]) == {"neither", "packing", "fusion", "fusion_and_packing"}
