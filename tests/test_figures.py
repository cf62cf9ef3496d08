"""A table's figures (benchmark/results/figures.py): the metrics they compute are the ones a manifest
may name, and they wait for finished runs (drawn from a trained store: tests/test_report.py)."""

from benchmark.catalog.plan import Planner
from benchmark.results.report import write_reports
from benchmark.store.layout import Store
from tests.helpers import REPO

CATALOG = str(REPO / "tests" / "catalog")


def test_the_figure_metrics_a_manifest_may_name_are_the_ones_the_figures_compute():
    """The manifest check (catalog) and the drawing (results) name the same metrics, in one order."""
    from benchmark.catalog.sections import FIGURE_METRICS
    from benchmark.results.figures import METRICS

    assert tuple(METRICS) == FIGURE_METRICS


def test_figures_wait_for_runs_in_an_empty_store(tmp_path, monkeypatch):
    monkeypatch.setenv("KD_REPRO_CATALOG", CATALOG)
    planner = Planner("smoke")
    write_reports([planner.plan("klmse-table4")], planner, Store(tmp_path / "empty"), tmp_path / "out")
    md = (tmp_path / "out" / "klmse-table4.md").read_text()
    assert "- acc_vs_tau: waiting for finished runs" in md and "- teacher DA/DV: waiting for finished runs" in md
    assert not list((tmp_path / "out").glob("*.fig7.png"))
