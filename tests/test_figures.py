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

    from benchmark.catalog.sections import CURVE_METRICS
    from benchmark.results.figures import CURVE_LABELS

    assert tuple(CURVE_LABELS) == CURVE_METRICS


def test_figures_wait_for_runs_in_an_empty_store(tmp_path, monkeypatch):
    monkeypatch.setenv("KD_REPRO_CATALOG", CATALOG)
    planner = Planner("smoke")
    write_reports([planner.plan("klmse-table4")], planner, Store(tmp_path / "empty"), tmp_path / "out")
    md = (tmp_path / "out" / "klmse-table4.md").read_text()
    assert "- acc_vs_tau: waiting for finished runs" in md and "- teacher DA/DV: waiting for finished runs" in md
    assert not list((tmp_path / "out").glob("*.fig7.png"))


def test_bars_draw_each_cells_number_and_return_them_as_quantities(tmp_path):
    """ATS Fig. 2's kind: a group per column, a bar per row, from the cells as the table reports them;
    the quantities top1/<row>/<col> are what a figure id's claims compare. A cell without a number
    (not run, or cited) has no quantity; no number at all draws nothing."""
    from types import SimpleNamespace

    from benchmark.results.figures import draw_figure

    def cell(row, col, value, status="measured", published=None):
        return SimpleNamespace(row=row, col=col, reproduced=value, status=status, published=published)

    fig = {"kind": "bars", "name": "fig2", "cols": ["A", "B"], "rows": ["KD", "ILS"]}
    plan = SimpleNamespace(manifest=SimpleNamespace(id="t", rows=[{"id": "KD"}, {"id": "ILS"}]), profile="smoke")
    cells = [cell("KD", "A", 71.5, "within", 70.0), cell("ILS", "A", 69.25), cell("KD", "B", 64.0),
             cell("ILS", "B", None, "pending")]
    got = draw_figure(fig, plan, cells, None, tmp_path / "bars.png")
    assert got == {"top1/KD/A": 71.5, "top1/ILS/A": 69.25, "top1/KD/B": 64.0}
    assert (tmp_path / "bars.png").stat().st_size > 5000
    empty = [cell(c.row, c.col, None, "pending") for c in cells]
    assert draw_figure(fig, plan, empty, None, tmp_path / "none.png") is False
    assert not (tmp_path / "none.png").exists()
