"""Figures, analyses and appendix tables as top-level ids (benchmark/catalog/items.py, figure_specs.py;
benchmark/results/figure_kinds.py, train_logits.py): every item of issue 27's audit listed, runnable or cited with a reason; bad input;
one figure id reproduced end to end on the tiny test catalogue."""

import json
from pathlib import Path

import pytest
import torch

from benchmark.catalog import items as catalog_items
from benchmark.catalog.items import item_paths, load_item, load_items
from benchmark.errors import BadInput
from tests.helpers import REPO, runner

CATALOG = REPO / "tests" / "catalog"

AUDIT = ["ats-fig2", "ats-fig3", "ats-fig4", "ats-fig5", "ats-fig6", "ats-fig7", "ats-fig8", "ats-fig9", "ats-fig10",
         "ats-fig11", "ats-fig12", "ats-fig13", "atkd-fig1", "atkd-fig2", "lskd-table3", "lskd-tableb1",
         "lskd-tableb3", "lskd-tableb4", "lskd-tablek1", "lskd-tableg1", "lskd-tableh1", "lskd-tablei1",
         "lskd-tablei2", "lskd-tablei3", "lskd-tablej1", "lskd-fig1", "lskd-fig2", "lskd-figa1", "lskd-figa2",
         "lskd-figa3", "lskd-figa4", "lskd-figa5", "lskd-table5", "lskd-tableb2",
         "klmse-figprelogit", "klmse-tablemethods"]
# klmse-noisy, also in the audit, is a table with a manifest of its own (manifests/klmse/klmse-noisy.yaml)
RUNNABLE_ATS = ["ats-fig2", "ats-fig3", "ats-fig4", "ats-fig5", "ats-fig6", "ats-fig7", "ats-fig8", "ats-fig10", "ats-fig12",
                "ats-fig13"]


def test_every_audited_item_is_an_id_runnable_or_cited_with_a_reason():
    items = {i.id: i for i in load_items()}
    assert set(AUDIT) <= set(items)
    assert catalog_items.find("klmse-noisy").name == "klmse-noisy.yaml" and "klmse-noisy" not in items
    for item in items.values():
        assert item.label.split()[0] in ("ATS", "ATKD", "LS-KD", "KL-MSE")
        assert (item.status == "cited") == bool(item.cited) and (item.cited or item.table)
        if item.cited:
            assert len(item.cited) > 40  # a reason, not a word
    assert all(items[i].status == "runnable" for i in RUNNABLE_ATS)
    assert "machine translation" in items["lskd-table5"].cited and "machine translation" in items["lskd-tableb2"].cited
    assert items["ats-fig7"].figure["logits"] == "train"  # the paper's training set (ats.txt:568)


def test_a_figure_id_plans_the_same_runs_as_its_table():
    from benchmark.catalog.plan import Planner

    planner = Planner("smoke", cost=False)
    fig = planner.plan("ats-fig8")
    table = planner.plan("ats-table5")
    by_key = {(c.row, c.col): c.job_ids() for c in table.cells}
    assert fig.cells and all(c.job_ids() == by_key[(c.row, c.col)] for c in fig.cells)
    alias = Planner("smoke", cost=False, figures=["fig10"]).plan("ats-table2").figure_cells["fig10"]
    assert Planner("smoke", cost=False).plan("ats-fig10").figure_cells["fig10"].points == alias.points


def test_find_and_load_take_a_table_or_a_figure_id_and_the_manifest_reader_only_tables():
    from benchmark.catalog.manifest import find_manifest

    table = catalog_items.load(catalog_items.find("ats-table5"))
    assert table.id == "ats-table5" and table.published is None  # a table's numbers: tables/<id>.csv
    path = catalog_items.find("ats-fig7")
    assert path.parent.name == "figures" and path.stem == "ats-fig7"
    fig = catalog_items.load(path)
    assert fig.id == "ats-fig7" and fig.published is not None and fig.figures[0]["name"] == "fig7"
    assert {r["id"] for r in fig.rows} < {r["id"] for r in table.rows}  # only the rows the figure reads
    with pytest.raises(BadInput, match="unknown table"):
        find_manifest("ats-fig7")  # manifest.py knows no figure ids (items.py imports it, not the reverse)
    with pytest.raises(BadInput, match="unknown figure or analysis id"):
        catalog_items.find("ats-fig99")
    with pytest.raises(BadInput, match="unknown table;"):
        catalog_items.find("ats-nope")


def _item_file(tmp_path, text: str) -> Path:
    path = tmp_path / "manifests" / "ats" / "figures" / "ats-figx.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    return path


def test_a_digitised_reading_without_its_source_is_bad_input(tmp_path):
    base = ("id: ats-figx\npaper: ATS\nlabel: ATS Fig. X\nkind: figure\ntitle: t\nsource: s\nfrom: ats-table5\n"
            "spec: {kind: variance_bars, col: Test acc, rows: [CIFAR-10 Teachers/RES14]}\n")
    ok = _item_file(tmp_path, base + "readings: [{quantity: q, value: 1.0, digitised: true, source: 'Fig. X, bar 1'}]\n")
    assert load_item(ok).readings[0]["digitised"] is True
    ok.write_text(base + "readings: [{quantity: q, value: 1.0, digitised: true}]\n")
    with pytest.raises(BadInput) as err:
        load_item(ok)
    assert err.value.field == "readings[0].source" and "digitised reading needs its source" in err.value.problem


def test_unknown_figure_id_is_one_line_exit_2_nothing_written(tmp_path):
    store = tmp_path / "store"
    proc = runner("report", "ats-fig99", "--store", str(store), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "ats-fig99: unknown figure" in proc.stderr
    assert not store.exists() and not (tmp_path / "out").exists()


@pytest.fixture
def test_catalog(monkeypatch):
    monkeypatch.setenv("KD_REPRO_CATALOG", str(CATALOG))
    assert "klmse-figtest" in item_paths()


@pytest.mark.usefixtures("test_catalog")
def test_reproduce_a_figure_id_at_smoke_writes_the_figure_into_the_report(tmp_path):
    store, out = tmp_path / "store", tmp_path / "store" / "reports"
    proc = runner("reproduce", "klmse-figtest", "--profile", "smoke", "--store", str(store), "--workers", "1",
                  timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    md = (out / "klmse-figtest.md").read_text()
    assert "![" in md and (out / "klmse-figtest.figure.png").stat().st_size > 1000
    assert "**Test Fig. 1.** Compared:" in md and "digitised reading" in md and "**held**" in md
    doc = json.loads((out / "klmse-figtest.json").read_text())
    assert "mean_target_logit/WRN-16-2" in doc["figures"]["figure"]
    (rid,) = [p.name for p in (store / "derived").iterdir()]
    saved = torch.load(store / "derived" / rid / "train_logits.pt", weights_only=True)
    assert saved["logits"].dtype == torch.float16 and saved["logits"].shape == (300, 100)  # 3 per class
    assert not (store / "runs" / rid / "train_logits.pt").exists()  # the run folder stays as it finished


@pytest.mark.usefixtures("test_catalog")
def test_report_of_a_figure_whose_runs_are_not_in_its_tables_stored_plan(tmp_path):
    """The table was reproduced from a manifest that planned other runs for the cell the figure reads."""
    import dataclasses

    from benchmark.catalog.manifest import find_manifest, load_manifest
    from benchmark.catalog.plan import Planner
    from benchmark.store.layout import Store
    from benchmark.store.stored_plan import write_plans

    m = load_manifest(find_manifest("klmse-table4"))
    cols = [{**c, "set": {"teacher": "resnet8@tiny"}} if c["id"] == "KL tau=inf" else c for c in m.columns]
    planner = Planner("smoke", cost=False)
    store = Store(tmp_path / "store")
    write_plans(store, [planner.plan_manifest(dataclasses.replace(m, columns=cols))], planner, [], {"version": "t"})
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    proc = runner("report", "klmse-figtest", "--store", str(store.root), "--profile", "smoke",
                  "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.strip().count("\n") == 0
    assert "plans/klmse-table4/smoke.json" in proc.stderr and "klmse-figtest reads cell WRN-16-2 / KL tau=inf" in proc.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def _penultimate(store, rid: str, gen: torch.Generator, classes: int, dim: int = 8) -> None:
    """Generated penultimate features in the derived area, as benchmark/results/penultimate.py leaves
    them: every class kept (2 training samples, 1 validation sample each), for the default per_class."""
    from benchmark.results.penultimate import path_of

    out = {"run": rid, "classes": list(range(classes)), "per_class": {"train": 150, "val": 50}, "splits": ["train", "val"],
           "weight": torch.randn(classes, dim, generator=gen), "bias": torch.randn(classes, generator=gen)}
    for split, n in (("train", 2), ("val", 1)):
        labels = torch.arange(classes).repeat_interleave(n)
        feats = torch.randn(classes, dim, generator=gen)[labels] + 0.3 * torch.randn(len(labels), dim, generator=gen)
        out[split] = {"centroids": torch.stack([feats[labels == c].mean(0) for c in range(classes)]),
                      "counts": torch.full((classes,), n), "labels": labels, "features": feats.half()}
    path = path_of(store, rid)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(out, path)


def _finish(store, rid: str, cfg: dict, gen: torch.Generator, classes: int) -> None:
    """A generated finished run: its config, a result at a generated top-1, test logits, training-set
    logits and penultimate features in the derived area (as benchmark/results/train_logits.py and
    penultimate.py leave them) and one epoch line."""
    from benchmark.engine.revisions import current_revisions
    from benchmark.results.train_logits import path_of
    from benchmark.store.layout import CONFIG, METRICS, RESULT, TEST_LOGITS

    run = store.run_dir(rid)
    run.mkdir(parents=True, exist_ok=True)
    top1 = float(torch.rand((), generator=gen) * 60 + 20)
    epoch = {"epoch": 1, "top1": top1, "top5": min(100.0, top1 + 10)}
    metrics = {"best": epoch, "last": epoch, "reported_epoch": "last", "top1": top1, "top5": epoch["top5"],
               "train_loss": float(torch.rand((), generator=gen) * 2), "train_top1": top1}
    (run / CONFIG).write_text(json.dumps(cfg))
    (run / RESULT).write_text(json.dumps({"id": rid, "status": "done", "config": cfg, "metrics": metrics,
                                          "revisions": current_revisions(), "execution": {}, "provenance": {}}))
    gap = {"test_sharpness_gap": float(torch.rand((), generator=gen))} if cfg["recipe"].get("epoch_sharpness_gap") else {}
    (run / METRICS).write_text(json.dumps({"epoch": 1, "test_top1": top1, "train_loss": metrics["train_loss"], **gap})
                               + "\n")
    labels = torch.arange(3 * classes) % classes  # every class has samples (probability bars pick one)
    for path, n in ((run / TEST_LOGITS, len(labels)), (path_of(store, rid), len(labels))):
        logits = torch.randn(n, classes, generator=gen) * (1 + torch.rand((), generator=gen) * 3)
        logits[torch.arange(n), labels] += 2 + torch.rand((), generator=gen) * 8
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"logits": logits.half(), "labels": labels, "run": rid}, path)
    if cfg["dataset"] == "imagenet":  # LS-KD's penultimate-feature analyses read its ImageNet runs
        _penultimate(store, rid, gen, classes)


def test_every_runnable_figure_id_plans_at_smoke_and_draws_from_finished_runs(tmp_path):
    """Each runnable figure or analysis id (and klmse-noisy's curves): planned at smoke, its runs
    finished with generated numbers and logits, then the real report: the PNG, linked in the
    markdown, the caption, and every reading and claim evaluated on a computed quantity."""
    from benchmark.catalog.plan import Planner
    from benchmark.engine.data import get_spec
    from benchmark.results.report import write_reports
    from benchmark.store.layout import Store

    runnable = [i for i in load_items() if i.status == "runnable"]
    assert {i.id for i in runnable} >= set(RUNNABLE_ATS) | {"atkd-fig1", "atkd-fig2"}
    planner = Planner("smoke", cost=False)
    plans = [planner.plan(i.id) for i in runnable] + [planner.plan("klmse-noisy")]
    store, gen = Store(tmp_path / "store"), torch.Generator().manual_seed(0)
    for rid in sorted(planner.jobs):
        cfg = planner.jobs[rid].config
        _finish(store, rid, cfg, gen, get_spec(cfg["dataset"]).num_classes)
    out = tmp_path / "reports"
    write_reports(plans, planner, store, out)
    for item in runnable + [None]:
        iid = item.id if item else "klmse-noisy"
        (plan,) = [p for p in plans if p.manifest.id == iid]
        name = plan.manifest.figures[0]["name"]
        md, doc = (out / f"{iid}.md").read_text(), json.loads((out / f"{iid}.json").read_text())
        assert doc["figures"][name], iid
        assert f"]({iid}.{name}.png)" in md and (out / f"{iid}.{name}.png").stat().st_size > 5000, iid
        if item is None:
            continue
        assert f"**{item.label}.** Compared:" in md, iid
        for reading in item.readings:
            assert doc["figures"][name].get(reading["quantity"]) is not None, (iid, reading["quantity"])
        for claim in item.claims:
            assert f"- {claim['text']}: **held**" in md or f"- {claim['text']}: **not held**" in md, (iid, claim)


def test_a_digitised_reading_without_its_source_on_the_command_line(tmp_path, monkeypatch):
    """One line naming the entry's file and field, exit 2, nothing written (no store, no report)."""
    import shutil

    from tests.helpers import cli

    catalog = tmp_path / "catalog"
    shutil.copytree(CATALOG, catalog)
    entry = catalog / "manifests" / "test" / "figures" / "klmse-figtest.yaml"
    text = entry.read_text()
    sourced = 'source: "tests: a made-up reading"'
    assert sourced in text
    entry.write_text(text.replace(", " + sourced, ""))
    monkeypatch.setenv("KD_REPRO_CATALOG", str(catalog))
    before = sorted(tmp_path.rglob("*"))
    for args in (("reproduce", "klmse-figtest", "--profile", "smoke", "--store", tmp_path / "store"),
                 ("report", "klmse-figtest", "--store", tmp_path / "store", "--out", tmp_path / "out")):
        proc = cli(*args)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, (args, proc.stderr)
        assert proc.stderr.strip().count("\n") == 0, proc.stderr
        assert "klmse-figtest.yaml" in proc.stderr and "readings[0].source" in proc.stderr
        assert "digitised reading needs its source" in proc.stderr
        assert sorted(tmp_path.rglob("*")) == before


def test_the_readme_counts_tables_figures_and_analyses_as_list_does():
    """README's "The suite's contents": runnable / cited / total per kind, as `list --json` has them
    (tables with a manifest apart from the other tables by id)."""
    import re

    from benchmark.catalog.listing import table_rows

    text = (REPO / "README.md").read_text()
    block = text[text.index("**The suite's contents**"):].split("\n\n")[1]
    readme = {}
    for line in block.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        readme[re.match(r"[a-z ]+", cells[0]).group().strip()] = tuple(int(c) for c in cells[1:])
    items = set(item_paths())
    groups = {"tables with a manifest": lambda r: r["kind"] == "table" and r["id"] not in items,
              "other tables by id": lambda r: r["kind"] == "table" and r["id"] in items,
              "figures": lambda r: r["kind"] == "figure", "analyses": lambda r: r["kind"] == "analysis"}
    rows = table_rows()
    listed = {}
    for name, belongs in groups.items():
        mine = [r for r in rows if belongs(r)]
        runnable = sum(r["status"] == "runnable" for r in mine)
        listed[name] = (runnable, len(mine) - runnable, len(mine))
    assert sum(n[2] for n in listed.values()) == len(rows)
    assert readme == listed
