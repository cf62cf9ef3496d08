"""Results as data: the pandas frames, report --format csv, TensorBoard events, the HTML site.

One small store (klmse-table4 of the test catalog, smoke profile) trained once by a worker
with --tensorboard, as `reproduce` would.
"""

import io
import json
import os
from html.parser import HTMLParser

import pandas as pd
import pytest
import torch

from benchmark.catalog.plan import Planner
from benchmark.commands.nightly import snapshot
from benchmark.results import frames as R
from benchmark.results.aggregate import aggregate_table
from benchmark.results.report import table_json, write_reports
from benchmark.results.site import write_site
from benchmark.runs.options import WorkerOptions
from benchmark.runs.sessions import record_session
from benchmark.runs.worker import run_worker
from benchmark.store.layout import TEST_LOGITS, Store
from benchmark.store.stored_plan import write_plans
from tests.helpers import REPO, cli

CATALOG = str(REPO / "tests" / "catalog")
TABLE = "klmse-table4"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    os.environ["KD_REPRO_CATALOG"] = CATALOG
    try:
        planner = Planner("smoke")
        plan = planner.plan(TABLE)
        store = Store(tmp_path_factory.mktemp("store"))
        for rid in plan.job_ids:
            store.ensure_config(rid, planner.jobs[rid].config)
        # as reproduce does: the plan stored, then the session noted (the tables of TensorBoard's folders)
        write_plans(store, [plan], planner, [], {"version": "test", "code_revision": "test"})
        record_session(store, [TABLE], "smoke", plans=True)
        run_worker(WorkerOptions(store=str(store.root), poll_seconds=0.1, tensorboard=R_TB_AVAILABLE))
        yield planner, plan, store
    finally:
        os.environ.pop("KD_REPRO_CATALOG")


try:
    import tensorboard  # noqa: F401
    R_TB_AVAILABLE = True
except ImportError:
    R_TB_AVAILABLE = False


def test_runs_frame_has_one_row_per_run_from_its_result(trained):
    _, plan, store = trained
    runs = R.runs(store)
    assert sorted(runs["id"]) == sorted(plan.job_ids)
    assert set(runs["status"]) == {"done"} and set(runs["tables"]) == {TABLE} and set(runs["profile"]) == {"smoke"}
    for _, row in runs.iterrows():
        res = store.result(row["id"])
        assert row["top1"] == res["metrics"]["top1"] and row["best_epoch"] == res["metrics"]["best"]["epoch"]
        assert row["model"] == res["config"]["model"] and row["loss"] == res["config"]["loss"]["name"]
    kd = runs[runs["loss"] == "kd"]
    assert len(kd) and kd["tau"].equals(kd["loss.tau"]) and "recipe.optimizer.lr" in runs
    assert set(runs.loc[runs["role"] == "teacher", "teacher"].isna()) == {True}


def test_epochs_frame_holds_every_term_summing_to_the_loss(trained):
    _, plan, store = trained
    ep = R.epochs(store)
    assert len(ep) == sum(len(store.metrics(r)) for r in plan.job_ids)
    assert {"run", "stage", "epoch", "lr", "train_loss", "loss_ce", "grad_norm", "nonfinite_frac", "test_top1"} <= set(ep)
    terms = [c for c in ep.columns if c.startswith("loss_")]
    assert ep[terms].sum(axis=1).to_numpy() == pytest.approx(ep["train_loss"].to_numpy(), rel=1e-5)
    one = ep[ep["run"] == plan.job_ids[0]]
    assert list(R.epochs(store, [plan.job_ids[0]])["epoch"]) == list(one["epoch"])


# KL-MSE Table 4's published row (tables/klmse-table4.csv, the paper's slides) and its columns' runs
PUBLISHED = {"KL tau=0.1": 51.64, "KL tau=0.5": 52.07, "KL tau=1": 51.36, "KL tau=5": 50.11, "KL tau=20": 49.69,
             "KL tau=inf": 49.46, "MSE": 49.20}
KL_TAUS = {"KL tau=0.1": 0.1, "KL tau=0.5": 0.5, "KL tau=1": 1.0, "KL tau=5": 5.0, "KL tau=20": 20.0}


def _reported(store, rid, key):
    m = store.result(rid)["metrics"]
    return m[m["reported_epoch"]][key]


def _expected_cells(store, plan) -> pd.DataFrame:
    """The cells of the test manifest's klmse-table4 at the smoke profile, written out by hand: which
    run each column reads (found from the configs), what it reads from it (top-1; top-5 for tau=20;
    the teacher's top-1 for tau=inf; for MSE the mean ATKD sharpness gap at tau 4 of the test logits,
    log sum exp(v/4) - log sum exp(z/4)), delta = reproduced - published, never judged at smoke."""
    configs = {rid: store.config(rid) for rid in plan.job_ids}
    kd = {c["loss"]["tau"]: rid for rid, c in configs.items() if c["loss"]["name"] == "kd"}
    (teacher,) = [rid for rid, c in configs.items() if not c.get("teacher")]
    (mse,) = [rid for rid, c in configs.items() if c["loss"]["name"] == "mse"]
    runs = {col: kd[tau] for col, tau in KL_TAUS.items()} | {"KL tau=inf": teacher, "MSE": mse}
    logits = {r: torch.load(store.run_file(r, TEST_LOGITS), weights_only=True)["logits"].double() for r in (mse, teacher)}
    gap = (torch.logsumexp(logits[teacher] / 4.0, 1) - torch.logsumexp(logits[mse] / 4.0, 1)).mean().item()
    reproduced = {col: _reported(store, runs[col], "top5" if col == "KL tau=20" else "top1") for col in PUBLISHED}
    reproduced["MSE"] = gap
    return pd.DataFrame([{"table": TABLE, "profile": "smoke", "row": "WRN-16-2", "col": col, "rule": "value",
                          "published": pub, "reproduced": reproduced[col], "std": None, "n": 1,
                          "delta": reproduced[col] - pub, "status": "not comparable", "published_top5": None,
                          "reproduced_top5": None, "winner": None, "note": None, "runs": runs[col]}
                         for col, pub in PUBLISHED.items()], columns=R.CELL_COLUMNS)


def test_cells_frame_is_the_reports_cells_and_csv_writes_it(trained):
    planner, plan, store = trained
    frame = R.cells(store, TABLE)
    want = _expected_cells(store, plan)
    pd.testing.assert_frame_equal(frame, want, check_dtype=False, rtol=1e-6, atol=1e-6)
    doc = table_json(plan, aggregate_table(plan, planner, store), store)  # the report's JSON reads the same
    assert len(doc["cells"]) == len(want)
    for (_, row), cell in zip(want.iterrows(), doc["cells"]):
        assert (row["row"], row["col"], row["status"]) == (cell["row"], cell["col"], cell["status"])
        for key in ("published", "reproduced", "delta"):
            assert cell[key] == pytest.approx(row[key], rel=1e-6, abs=1e-6)
    assert set(frame["status"]) <= {"not comparable", "measured", "cited", "setting"}  # smoke: never ticked
    measured = frame[frame["reproduced"].notna() & (frame["rule"] == "value")]
    assert len(measured) and set(measured["n"]) == {1}  # one seed at the smoke profile
    out = cli("report", TABLE, "--store", store.root, "--format", "csv", "--profile", "smoke")  # in this process
    assert out.returncode == 0, out.stderr
    csv = pd.read_csv(io.StringIO(out.stdout))
    assert list(csv.columns) == R.CELL_COLUMNS
    assert list(csv["reproduced"].fillna(-1)) == pytest.approx(list(frame["reproduced"].astype(float).fillna(-1)))
    assert list(csv["reproduced"]) == pytest.approx(list(want["reproduced"]), rel=1e-6, abs=1e-6)


@pytest.mark.skipif(not R_TB_AVAILABLE, reason="tensorboard is not installed (pip install -e '.[test]')")
def test_tensorboard_events_read_back_with_tensorboards_reader(trained):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, plan, store = trained
    dirs = sorted((store.root / "tensorboard").glob("*/*"))
    assert len(dirs) == len(plan.job_ids) and {d.parent.name for d in dirs} == {TABLE}
    for d in dirs:
        rid = d.name.rsplit("-", 1)[1]
        cfg = store.config(rid)
        assert d.name.startswith(f"{cfg['model']}-{cfg['loss']['name']}-")
        acc = EventAccumulator(str(d))
        acc.Reload()
        lines = store.metrics(rid)
        tags = set(acc.Tags()["scalars"])
        assert {"loss/total", "loss/ce", "accuracy/test_top1", "train/lr", "train/grad_norm"} <= tags
        for tag, key in (("loss/total", "train_loss"), ("accuracy/test_top1", "test_top1"), ("train/lr", "lr")):
            events = acc.Scalars(tag)
            assert [e.step for e in events] == [m["epoch"] for m in lines]
            assert [e.value for e in events] == pytest.approx([m[key] for m in lines], rel=1e-6)


class Page(HTMLParser):
    """Tags, links, images and table cells of a page (no browser needed)."""

    def __init__(self, text):
        super().__init__()
        self.stack, self.links, self.images, self.tables, self.td_classes, self.errors = [], [], [], 0, [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag not in ("meta", "link", "img", "br"):
            self.stack.append(tag)
        if tag == "a":
            self.links.append(a.get("href"))
        if tag == "link":
            self.links.append(a.get("href"))
        if tag == "img":
            self.images.append(a.get("src"))
        if tag == "table":
            self.tables += 1
        if tag == "td" and a.get("class"):
            self.td_classes.append(a["class"])

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def test_site_pages_are_well_formed_and_link_what_exists(trained, tmp_path):
    planner, plan, store = trained
    nightly = tmp_path / "nightly"
    for date in ("2026-11-27", "2026-11-28"):  # two nights of the same store: a history to show
        write_reports([plan], planner, store, nightly / date)
        (nightly / date / "nightly.json").write_text(json.dumps(snapshot(nightly / date, [TABLE], [], "smoke", date)))
    out = tmp_path / "site"
    pages = write_site(store, out, nightly)
    assert pages == [out / "index.html", out / f"{TABLE}.html"]
    for page in pages:
        p = Page(page.read_text())
        assert not p.errors and not p.stack, (page, p.errors, p.stack)
        for ref in p.links + p.images:  # every local link and image exists
            assert (out / ref).exists(), (page, ref)
    index = Page((out / "index.html").read_text())
    assert f"{TABLE}.html" in index.links and index.tables == 1
    text = (out / f"{TABLE}.html").read_text()
    page = Page(text)
    frame = R.cells(store, TABLE)
    assert sorted(page.td_classes.count(s) for s in set(frame["status"])) == \
        sorted(int((frame["status"] == s).sum()) for s in set(frame["status"]))
    assert f"{TABLE}.png" in page.images and "Nightly history" in text and "2026-11-28" in text
    assert ("Readings of the paper" in text) == bool(plan.manifest.notes)  # the test catalog has none
    assert "Provenance" in text and "not comparable" in text.lower()
    assert pd.read_csv(out / f"{TABLE}.csv")["status"].tolist() == frame["status"].tolist()
    assert cli("site", "--store", tmp_path / "nope", "--out", tmp_path / "x").returncode == 2
