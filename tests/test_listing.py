"""list's rows (benchmark/catalog/listing.py): cached per catalogue stamp, planned again when a
catalogue file changes."""

import shutil

import pytest

from benchmark.catalog import listing
from benchmark.catalog.plan import Planner
from tests import caches
from tests.helpers import REPO

cache = caches.cache  # the fixture: a private FLOPs and list cache
CATALOG = REPO / "tests" / "catalog"


@pytest.mark.usefixtures("cache")
def test_list_rows_are_replanned_when_a_catalogue_file_changes(tmp_path, monkeypatch):
    root = tmp_path / "catalog"
    shutil.copytree(CATALOG, root)
    monkeypatch.setenv("KD_REPRO_CATALOG", str(root))
    rows = listing.table_rows()
    by_id = {r["table"]: r for r in rows}
    plan = Planner("paper").plan("klmse-table5")
    assert by_id["klmse-table5"]["runs"] == len(plan.job_ids) and by_id["klmse-table5"]["cells"] == len(plan.cells)
    assert listing.table_rows() == rows  # read back
    path = root / "manifests" / "test" / "klmse-table5.yaml"
    path.write_text(path.read_text().replace("grid: {loss.tau: [2.0, 4.0]}", "grid: {loss.tau: [2.0, 4.0, 8.0]}"))
    again = {r["table"]: r for r in listing.table_rows()}
    assert again["klmse-table5"]["runs"] == by_id["klmse-table5"]["runs"] + 1
