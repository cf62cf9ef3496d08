"""LS-KD's penultimate-feature analyses as ids (benchmark/results/penultimate_kinds.py; specs in
benchmark/catalog/figure_specs.py): lskd-table3, lskd-tablek1, lskd-fig1 and lskd-figa1 plan only the runs they
read, draw from generated finished runs with every published reading computed, and a finished run
without its saved model is bad input naming the run, with nothing written."""

import json

import pytest
import torch

from benchmark.catalog.figure_specs import check_spec
from benchmark.catalog.items import item_paths, load_item
from benchmark.errors import BadInput
from benchmark.results import penultimate_kinds as kinds
from tests.test_items import _finish

IDS = ("lskd-table3", "lskd-tablek1", "lskd-fig1", "lskd-figa1")


def test_class_names_are_torchvisions_and_an_unknown_one_is_bad_input():
    assert kinds.class_indices(["miniature poodle", "standard poodle", "submarine"], "x.yaml") == [266, 267, 833]
    assert kinds.class_indices(["golden retriever", "king snake"], "x.yaml") == [207, 56]
    with pytest.raises(BadInput, match="'golden_retriever' is not an ImageNet class name"):
        kinds.class_indices(["golden_retriever"], "x.yaml")


def test_the_specs_check_their_fields():
    rows, cols = ["Teacher", "T=1", "T=3"], ["A", "B"]
    good = {"kind": "diffusion_index", "cols": ["B"], "from_row": "T=1", "to_row": "T=3",
            "reference": {"row": "Teacher", "col": "A"}, "targets": ["king snake"]}
    check_spec(dict(good), "p.yaml", rows, cols)
    for change, field in (({"distance": "cosine"}, "spec.distance"), ({"normaliser": "some"}, "spec.normaliser"),
                          ({"reference": {"row": "T=9", "col": "A"}}, "spec.reference"),
                          ({"similar": 0}, "spec.similar"), ({"per_class": {"train": 1}}, "spec.per_class")):
        with pytest.raises(BadInput) as err:
            check_spec({**good, **change}, "p.yaml", rows, cols)
        assert err.value.field == field
    proj = {"kind": "projection", "rows": ["T=1"], "cols": ["A"], "classes": ["a", "b", "c"], "bias": "code"}
    check_spec(dict(proj), "p.yaml", rows, cols)
    for change, field in (({"classes": ["a", "b"]}, "spec.classes"), ({"bias": "none"}, "spec.bias")):
        with pytest.raises(BadInput) as err:
            check_spec({**proj, **change}, "p.yaml", rows, cols)
        assert err.value.field == field


def test_the_projection_takes_the_plotted_classes_biases_or_the_codes_classes_0_to_2():
    gen = torch.Generator().manual_seed(0)
    data = {"weight": torch.randn(5, 4, generator=gen), "bias": torch.randn(5, generator=gen)}
    for split, n in (("train", 6), ("val", 3)):
        labels = torch.tensor([2, 3, 4]).repeat_interleave(n)
        data[split] = {"labels": labels, "features": torch.randn(len(labels), 4, generator=gen) + labels[:, None]}
    mine = kinds._projection_panel(data, [2, 3, 4], "classes")
    code = kinds._projection_panel(data, [2, 3, 4], "code")
    assert len(mine["train"][0]) == 3 and mine["train"][0][0].shape == (6, 2) and mine["val"][1].shape == (3, 2)
    assert not torch.allclose(mine["train"][1], code["train"][1])  # other biases, another plane
    data["bias"][[0, 1, 2]] = data["bias"][[2, 3, 4]]  # the same biases: the same projection
    assert torch.allclose(kinds._projection_panel(data, [2, 3, 4], "code")["val"][1], mine["val"][1])
    # the PCA is fitted on the training split: its projected points and centroids are centred
    pts, cen = mine["train"]
    assert torch.allclose(torch.cat([*pts, cen]).mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-9)


def _generated(tmp_path, with_features: bool = True):
    from benchmark.catalog.plan import Planner
    from benchmark.engine.data import get_spec
    from benchmark.store.layout import Store

    planner = Planner("smoke", cost=False)
    plans = [planner.plan(i) for i in IDS]
    store, gen = Store(tmp_path / "store"), torch.Generator().manual_seed(1)
    store.mark_layout()
    for rid in sorted(planner.jobs):
        cfg = planner.jobs[rid].config
        _finish(store, rid, cfg, gen, get_spec(cfg["dataset"]).num_classes)
        if not with_features:
            (store.root / "derived" / rid / "penultimate.pt").unlink()
    return planner, plans, store


def test_each_id_plans_only_what_it_reads_and_draws_from_generated_runs(tmp_path):
    from benchmark.results.report import write_reports

    planner, plans, store = _generated(tmp_path)
    table3, k1, fig1, figa1 = plans
    assert len(table3.job_ids) == 6 and set(k1.job_ids) == set(table3.job_ids)  # 2 teachers, 4 students
    cited = {(c.row, c.col) for c in table3.cells if c.rule == "cited"}
    assert ("T=1", "ResNet-18 alpha=0.0") in cited and ("Teacher", "ResNet-18 alpha=0.1") in cited
    assert len(fig1.job_ids) == 6  # 2 teachers, the ResNet-18 students of each at T = 1 and T = 3
    assert len(figa1.job_ids) == 6 and len(set(figa1.job_ids) - set(fig1.job_ids)) == 4  # the ResNet-50 students
    out = tmp_path / "reports"
    write_reports(plans, planner, store, out)
    for iid in IDS:
        item = load_item(item_paths()[iid])
        md, doc = (out / f"{iid}.md").read_text(), json.loads((out / f"{iid}.json").read_text())
        q = doc["figures"]["figure"]
        assert (out / f"{iid}.figure.png").stat().st_size > 5000 and f"**{item.label}.** Compared:" in md
        assert all(q.get(r["quantity"]) is not None for r in item.readings), iid
        assert all(f"- {c['text']}: **" in md for c in item.claims), iid
    q3 = json.loads((out / "lskd-table3.json").read_text())["figures"]["figure"]
    qk = json.loads((out / "lskd-tablek1.json").read_text())["figures"]["figure"]
    key = "alpha_S/train/ResNet-18 alpha=0.1/king snake"
    assert q3[key] != qk[key]  # centroid and pairwise distances differ
    assert q3["max_alpha_S/val/ResNet-50 alpha=0.1"] == max(
        v for k, v in q3.items() if k.startswith("alpha_S/val/ResNet-50 alpha=0.1/"))
    qf = json.loads((out / "lskd-fig1.json").read_text())["figures"]["figure"]
    assert 0 < qf["relative_centroid_distance/val/T=3/ResNet-18 alpha=0.1"] < 1  # d01 / (d01 + d02 + d12)


def test_a_finished_run_without_its_saved_model_is_bad_input_and_nothing_is_written(tmp_path):
    from tests.helpers import cli

    _, _, store = _generated(tmp_path, with_features=False)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    proc = cli("report", "lskd-table3", "--store", store.root, "--profile", "smoke", "--out", tmp_path / "out")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.strip().count("\n") == 0
    assert "model.pt" in proc.stderr and "finished without its saved model" in proc.stderr
    assert "lskd-table3 computes its penultimate features" in proc.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_the_diffusion_claims_hold_on_the_published_numbers():
    """A check of the claims' wording: on Table 3's and Table K.1's printed numbers (with the
    max / min over the 10 targets the claims compare), every claim holds."""
    from benchmark.results.figure_kinds import judge_claims

    for iid in ("lskd-table3", "lskd-tablek1"):
        item = load_item(item_paths()[iid])
        q = {r["quantity"]: r["value"] for r in item.readings}
        for key, value in list(q.items()):
            name, split, col, _ = key.split("/")
            agg = {"alpha_S": ("max_alpha_S", max), "alpha_D": ("min_alpha_D", min)}[name]
            q[f"{agg[0]}/{split}/{col}"] = agg[1](q.get(f"{agg[0]}/{split}/{col}", value), value)
        judged = judge_claims(item.claims, q)
        assert judged and all(j["status"] == "held" for j in judged), (iid, judged)
    assert q["max_alpha_S/val/ResNet-18 alpha=0.1"] == -2.919  # K.1's Chesapeake Bay retriever, val
