"""Every shipped manifest plans under every profile; sharing across tables; the plan JSON contract."""

import json

import pytest

from benchmark.catalog.manifest import manifest_paths
from benchmark.catalog.plan import Planner
from benchmark.catalog.published import published_ids
from tests.helpers import cli

IDS = sorted(manifest_paths())


def test_every_published_table_has_a_manifest_and_back():
    assert set(IDS) == set(published_ids())
    for required in ("ats-table2", "ats-table3", "ats-table5", "ats-table6", "ats-table7", "lskd-table2a",
                     "lskd-table2b", "lskd-table4", "klmse-table1", "klmse-table4", "klmse-table5",
                     "klmse-sequential", *[f"atkd-table{i}" for i in range(1, 10)]):
        assert required in IDS


@pytest.mark.heavy
@pytest.mark.parametrize("profile", ["paper", "smoke"])
def test_every_manifest_plans(profile):
    planner = Planner(profile)
    for tid in IDS:
        plan = planner.plan(tid)
        assert plan.cells, tid
        for cell in plan.cells:
            for rid in cell.job_ids():
                assert rid.startswith("checkpoint:") or rid in planner.jobs


def test_ats_table2_expands_to_its_full_grid():
    plan = Planner("paper").plan("ats-table2")
    # 9 columns = 3 teacher families x 3 students. Per column: KD 11 (tau, student tau) points,
    # ST-KD 5 smaller teachers x 11, ESKD 3 early-stopped teachers x 11, TAKD 2 assistants x 11,
    # SCKD 6 taus, KD+ATS 6 (tau1, tau2). Per student: NoKD and Ens's seed-1 member (Ens's seed 0
    # is the NoKD run). Teachers: 3 column teachers + per family 5 smaller, 3 early-stopped, 2
    # assistants. KD+ATS+Ens waits for KD+ATS: its 9 seed-1 runs are planned later (1245 then).
    per_column = 11 + 5 * 11 + 3 * 11 + 2 * 11 + 6 + 6
    assert len(plan.job_ids) == 9 * per_column + 3 * 2 + 3 + 3 * (5 + 3 + 2) == 1236
    waiting = plan.waiting()
    assert len(waiting) == 9 and {c.row for c in waiting} == {"KD+ATS+Ens"}
    kd = next(c for c in plan.cells if c.row == "KD" and c.col == "ResNet110/VGG8")
    assert kd.rule == "best" and len(kd.points) == 11
    st = next(c for c in plan.cells if c.row == "ST-KD" and c.col == "WRN28-8/SFV1")
    assert len(st.points) == 5 * 11  # five smaller WRNs x the tau grid


def test_a_single_cell_can_be_cited():
    """atkd-table3's FSP cannot run WRN-40-2/WRN-40-1 (unequal channels): that cell alone is cited."""
    plan = Planner("smoke").plan("atkd-table3")
    fsp = {c.col: c.rule for c in plan.cells if c.row == "FSP"}
    assert fsp.pop("WRN-40-2/WRN-40-1") == "cited" and set(fsp.values()) == {"value"}


def test_shared_runs_are_counted_once():
    planner = Planner("paper")
    one, five = planner.plan("atkd-table1"), planner.plan("atkd-table5")
    union = set(one.job_ids) | set(five.job_ids)
    assert len(union) < len(one.job_ids) + len(five.job_ids)
    proc = cli("plan", "atkd-table1", "atkd-table5", "--json")
    assert proc.returncode == 0, proc.stderr
    docs = json.loads(proc.stdout)
    assert [d["table"] for d in docs] == ["atkd-table1", "atkd-table5"]
    for d in docs:
        assert {"table", "profile", "cells", "jobs", "pending", "gpu_hours"} <= set(d)
        assert d["profile"] == "paper" and d["gpu_hours"] > 0
    ids = [{j["id"] for j in d["jobs"]} for d in docs]
    assert len(ids[0] | ids[1]) == len(union)


def test_every_paper_states_claims_that_its_own_numbers_support():
    """The claims are the papers' words as checks; on the published numbers each must hold, so a
    claim that fails on reproduced numbers is news about the reproduction, not about the wording."""
    from benchmark.catalog.manifest import load_manifest
    from benchmark.catalog.published import load_published
    from benchmark.results.claims import evaluate_claim

    papers_with_claims = set()
    for tid in IDS:
        m = load_manifest(manifest_paths()[tid])
        pub = load_published(tid)
        rows, cols = [r["id"] for r in m.rows], [c["id"] for c in m.columns if not c.get("aggregate")]
        printed = any(cell.value is not None for cell in pub.cells.values())
        for claim in m.claims:
            result = evaluate_claim(claim, pub.value, rows, cols)
            if not printed:  # a figure with curves only (klmse-noisy): nothing to check the words against
                assert result["status"] == "undecided", (tid, claim["text"], result["detail"])
                continue
            assert result["status"] == "held", (tid, claim["text"], result["detail"])
            papers_with_claims.add(m.paper)
    assert papers_with_claims == {"ATS", "ATKD", "LS-KD", "KL-MSE"}


def test_cells_taken_from_other_papers_are_cited_and_own_cells_follow_the_paper():
    """atkd-table6's '-' KD cells and klmse-table5's Heo et al. cells are cited (no run); the KL-MSE
    ImageNet cells report the last epoch (kd_data keeps the final state); ATS's own Table 7 column
    trains with the ATS recipe (batch 128) while the columns it cites from CRD keep CRD's (batch 64)."""
    planner = Planner("paper")

    def cells(tid):
        return {(c.row, c.col): c for c in planner.plan(tid).cells}

    def configs(cell):
        return [planner.jobs[rid].config for rid in cell.job_ids()]

    six = cells("atkd-table6")
    assert six[("KD", "ResNet101")].rule == six[("KD", "ResNet152")].rule == "cited"
    assert six[("KD", "ResNet34")].rule != "cited" and configs(six[("KD", "ResNet34")])

    five = cells("klmse-table5")
    assert five[("ResNet-50", "CE")].rule == five[("ResNet-50", "KL (Standard)")].rule == "cited"
    for col in ("KL (tau=20)", "MSE"):
        assert [c["recipe"]["report_epoch"] for c in configs(five[("ResNet-50", col)])] == ["last"]

    seven = cells("ats-table7")
    ours = configs(seven[("VGG13 → VGG8", "Ours")])
    assert len(ours) == 6
    assert {(c["recipe"]["batch_size"], c["recipe"]["init_scheme"]) for c in ours} == {(128, "ats_code")}
    assert {c["recipe"]["batch_size"] for c in configs(seven[("VGG13 → VGG8", "KD")])} == {64}
