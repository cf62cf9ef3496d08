"""The published tables (tables/*.csv) and their loader (benchmark/catalog/published.py)."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import pytest

from benchmark.catalog.published import (
    Cell,
    UnknownTable,
    load_published,
    load_stds,
    parse_cell,
    published_ids,
    published_stds,
)
from benchmark.errors import BadInput
from benchmark.results.verdict import judge

REPO = Path(__file__).resolve().parent.parent
TABLES = REPO / "tables"

# (rows, cols) as in the paper (cols without the 'row' column)
SHAPES = {
    "ats-table2": (11, 10),
    "ats-table3": (11, 10),
    "ats-table5": (56, 3),
    "ats-table6": (8, 10),
    "ats-table7": (4, 9),
    "ats-table8": (2, 4),
    "atkd-table1": (3, 5),
    "atkd-table2": (1, 6),
    "atkd-table3": (16, 7),
    "atkd-table4": (1, 8),
    "atkd-table5": (6, 5),
    "atkd-table6": (4, 4),
    "atkd-table7": (2, 6),
    "atkd-table8": (12, 4),
    "atkd-table9": (4, 5),
    "atkd-table10": (1, 6),
    "atkd-table11": (5, 4),
    "atkd-table12": (1, 10),
    "atkd-table13": (1, 6),
    "lskd-table2a": (5, 4),
    "lskd-table2b": (5, 4),
    "lskd-table4": (5, 2),
    "lskd-tableb5": (3, 2),
    "klmse-table1": (5, 7),
    "klmse-table4": (1, 7),
    "klmse-table5": (1, 4),
    "klmse-sequential": (5, 6),
}

# Spot checks against the paper text: (table, row, column) -> the cell as printed.
SPOT = {
    "ats-table2": [
        ("Teacher", "ResNet110/VGG8", "74.09"),
        ("Teacher", "WRN28-8/MV2", "79.73"),
        ("Teacher", "RNX29-64-4d/SFV1", "79.91"),
        ("NoKD", "ResNet110/VGG8", "69.92"),
        ("TAKD", "ResNet110/VGG8", "72.71"),
        ("KD+ATS", "WRN28-8/SFV1", "73.58"),
        ("ResKD", "ResNet110/SFV1", "76.03"),
        ("KD+ATS+Ens", "RNX29-64-4d/MV2", "69.82"),
        ("KD+ATS+Ens", "Avg", "73.16"),
        ("NoKD", "Avg", "68.24"),
    ],
    "ats-table3": [
        ("Teacher", "TinyImageNet/WRN50-2/ANet", "66.28"),
        ("Teacher", "CUB/RNX101-32-8d/MV2", "79.50"),
        ("Teacher", "Stanford Dogs/RNX101-32-8d/SFV2", "73.98"),
        ("NoKD", "TinyImageNet/WRN50-2/ANet", "34.62"),
        ("ResKD", "CUB/RNX101-32-8d/ANet", "62.60"),
        ("KD+ATS+Ens", "CUB/RNX101-32-8d/ANet", "62.00"),
        ("KD+ATS", "Stanford Dogs/RNX101-32-8d/MV2", "73.16"),
        ("KD+ATS+Ens", "Avg", "63.54"),
    ],
    "ats-table5": [
        ("CIFAR-10 Teachers/RES14", "N.P (M)", "0.18"),
        ("CIFAR-10 Teachers/RES14", "Test acc", "91.5"),
        ("CIFAR-10 Teachers/R29-64-4d", "Test acc", "95.8"),
        ("CIFAR-100 Teachers/RES110", "Test acc", "74.1"),
        ("CIFAR-100 Teachers/WRN28-8", "N.P (M)", "23"),
        ("CIFAR-100 Teachers/R29-4-4d", "N.P (M)", "1.3"),
        ("CIFAR-100 Students/MV2", "Train acc", "83.7"),
        ("TinyImageNet Teachers/WRN50-2", "N.P (M)", "67"),
        ("CUB Teachers/R101-32-8d", "Train acc", "98.1"),
        ("Stanford Dogs Students/ANet", "N.P (M)", "2.6"),
        ("Google Speech Commands Teachers/RES", "Test acc", "99.2"),
        ("Google Speech Commands Students/DSCNN", "N.P (M)", "0.0598"),
    ],
    "ats-table6": [
        ("Teacher", "ResNet110/VGG8", "94.3"),
        ("Teacher", "WRN28-8/VGG8", "96.1"),
        ("Teacher", "RNX29-64-4d/MV2", "95.8"),
        ("ST-KD", "ResNet110/MV2", "88.83"),
        ("KD+ATS", "RNX29-64-4d/MV2", "88.96"),
        ("SCKD", "Avg", "90.97"),
    ],
    "ats-table7": [
        ("ResNet110 → ResNet20", "Teacher", "74.31"),
        ("ResNet110 → ResNet20", "Student", "69.06"),
        ("ResNet110 → ResNet20", "KD", "70.67"),
        ("ResNet110 → ResNet20", "Ours", "71.57"),
        ("VGG13 → VGG8", "IE-AT", "74.05"),
        ("WRN40-2 → WRN16-2", "ReKD", "75.67"),
        ("ResNet56 → ResNet20", "CRD", "71.16"),
    ],
    "ats-table8": [
        ("KD+TS", "lambda=0.5 with tau^2", "95.52"),
        ("KD+ATS", "lambda=0.9 with tau^2", "97.21"),
        ("KD+ATS", "lambda=0.9 without tau^2", "95.84"),
    ],
    "atkd-table1": [
        ("Teacher Acc", "ResNet20", "69.57"),
        ("Teacher Acc", "ResNet110", "73.8"),
        ("Student Acc", "ResNet44", "68"),
        ("KD loss", "ResNet110", "3.3"),
    ],
    "atkd-table2": [("Ssharpness", "ResNet14", "12.20"), ("Ssharpness", "ResNet110", "16.13")],
    "atkd-table3": [
        ("Teacher", "ResNet32*4/ResNet8*4", "79.42"),
        ("Student", "ResNet110/ResNet32", "71.14"),
        ("FSP", "WRN-40-2/WRN-40-1", "-"),
        ("FSP", "ResNet56/ResNet20", "69.95"),
        ("CRD", "ResNet110/ResNet20", "71.46"),
        ("ATKD", "WRN-40-2/WRN-16-2", "75.75"),
        ("ATKD", "VGG13/VGG8", "74.17"),
    ],
    "atkd-table4": [("Top1", "CE", "69.8"), ("Top1", "KD", "69.20"), ("Top1", "ATKD", "72.80")],
    "atkd-table5": [
        ("Training loss/ATKD", "ResNet110", "1.6"),
        ("Test acc/ATKD", "ResNet110", "69.2"),
        ("Gs gap/Vanilla KD", "ResNet56", "0.30"),
        ("Gs gap/ATKD", "ResNet20", "0.05"),
    ],
    "atkd-table6": [
        ("KD", "ResNet34", "69.43"),
        ("ES", "ResNet34", "70.98"),
        ("ATKD", "ResNet34", "72.80"),
        ("KD", "ResNet50", "69.05"),
        ("TA", "ResNet50", "70.65"),
        ("ES", "ResNet50", "70.95"),
        ("ATKD", "ResNet50", "73.01"),
        ("ATKD", "ResNet101", "72.85"),
        ("TA", "ResNet152", "70.59"),
        ("ES", "ResNet152", "70.74"),
        ("ATKD", "ResNet152", "72.70"),
    ],
    "atkd-table7": [
        ("Ssharpness (60 epochs)", "ResNet14", "-"),
        ("Ssharpness (60 epochs)", "ResNet56", "14.77"),
        ("Ssharpness (240 epochs)", "ResNet56", "15.37"),
    ],
    "atkd-table8": [
        ("tau_T=4/tau_S=3.5", "Accuracy", "68.27"),
        ("ATKD", "Accuracy", "69.0"),
        ("ATKD", "Ss gap", "0.19"),
        ("tau_T=3.5/tau_S=4", "Ss gap", "0.40"),
        ("tau_T=5/tau_S=4", "tau_T", "5"),
        ("tau_T=4/tau_S=4 (second block)", "Accuracy", "68.06"),
    ],
    "atkd-table9": [
        ("Test acc/Vanilla KD", "WRN-16-6", "67.2"),
        ("Test acc/ATKD", "WRN-16-5", "69.40"),
        ("Gs gap/ATKD", "WRN-16-6", "0.55"),
    ],
    "atkd-table10": [("Entropy", "ResNet14", "0.97"), ("Entropy", "ResNet110", "0.09")],
    "atkd-table11": [
        ("Teacher acc", "ResNet56", "96.89"),
        ("Test acc/ATKD", "ResNet32", "96.83"),
        ("Gs gap/Vanilla KD", "ResNet44", "0.07"),
    ],
    "atkd-table12": [
        ("Logits Sum", "ResNet20", "-5e-5"),
        ("Logits Sum", "ResNet56", "-7.9e-4"),
        ("Logits Sum", "VGG13", "-3.1e-5"),
    ],
    "atkd-table13": [("Mean temperature", "ResNet14", "3.34"), ("Mean temperature", "ResNet110", "3.87")],
    "lskd-table2a": [
        ("Teacher", "ResNet-50 alpha=0.0", "76.130/92.862"),
        ("Teacher", "ResNet-18 alpha=0.1", "76.196/93.078"),
        ("T=1", "ResNet-18 alpha=0.0", "71.547/90.297"),
        ("T=1", "ResNet-18 alpha=0.1", "71.616/90.233"),
        ("T=2", "ResNet-18 alpha=0.1", "68.428/89.139"),
        ("T=3", "ResNet-18 alpha=0.1", "66.570/88.631"),
        ("T=64", "ResNet-18 alpha=0.1", "65.472/89.564"),
        ("T=64", "ResNet-50 alpha=0.1", "74.627/92.639"),
    ],
    "lskd-table2b": [
        ("Teacher", "ResNet-18 alpha=0.0", "81.584/95.927"),
        ("T=1", "ResNet-50 alpha=0.1", "83.742/96.778"),
        ("T=64", "ResNet-18 alpha=0.1", "67.161/93.062"),
    ],
    "lskd-table4": [
        ("Teacher", "MobileNet-V2 alpha=0.1", "82.068/96.168"),
        ("T=2", "MobileNet-V2 alpha=0.0", "81.895/95.858"),
        ("T=2", "MobileNet-V2 alpha=0.1", "80.609/95.47"),
        ("T=64", "MobileNet-V2 alpha=0.1", "70.435/93.494"),
    ],
    "lskd-tableb5": [
        ("Teacher", "ResNet-50 alpha=0.1", "82.068/96.168"),
        ("T=1", "ResNet-50 alpha=0.0", "82.568/96.479"),
        ("T=1", "ResNet-50 alpha=0.1", "83.794/96.686"),
        ("T=3", "ResNet-50 alpha=0.0", "82.706/96.307"),
        ("T=3", "ResNet-50 alpha=0.1", "81.739/96.117"),
    ],
    "klmse-table1": [
        ("WRN-16-2", "CE", "72.68"),
        ("WRN-16-2", "KL tau=1", "72.90"),
        ("WRN-16-2", "KL tau=3", "74.24"),
        ("WRN-16-2", "KL tau=5", "74.88"),
        ("WRN-16-2", "KL tau=20", "75.15"),
        ("WRN-16-2", "KL tau=inf", "75.51"),
        ("WRN-16-2", "MSE", "75.54"),
        ("WRN-40-6", "MSE", "80.25"),
        ("WRN-28-4", "CE", "78.88"),
    ],
    "klmse-table4": [("WRN-16-2", "KL tau=0.1", "51.64"), ("WRN-16-2", "MSE", "49.20")],
    "klmse-table5": [
        ("ResNet-50", "CE", "76.28"),
        ("ResNet-50", "KL (Standard)", "77.15"),
        ("ResNet-50", "KL (tau=20)", "77.52"),
        ("ResNet-50", "MSE", "75.84"),
    ],
    "klmse-sequential": [
        ("none", "WRN-16-2 CE", "72.68"),
        ("none", "WRN-28-4", "-"),
        ("WRN-16-4 (CE)", "WRN-16-4", "77.28"),
        ("WRN-16-4 (CE)", "WRN-16-2 KL tau=3", "74.84"),
        ("WRN-28-4 (CE)", "WRN-16-2 MSE", "75.54"),
        ("WRN-28-4 (CE) -> WRN-16-4 (KL tau=3)", "WRN-16-2 MSE", "75.78"),
        ("WRN-28-4 (CE) -> WRN-16-4 (MSE)", "WRN-16-4", "79.03"),
        ("WRN-28-4 (CE) -> WRN-16-4 (MSE)", "WRN-16-2 MSE", "75.48"),
    ],
}

# Every empty cell, by table (all others hold a number or a dash); each is explained in the file's notes.
EMPTY = {
    "ats-table2": {("Teacher", "Avg")},
    "ats-table3": {("Teacher", "Avg")},
    "ats-table6": {("Teacher", "Avg")},
    "atkd-table6": {("TA", "ResNet34"), ("TA", "ResNet101")},
    "atkd-table8": {("ATKD", "tau_T"), ("ATKD", "tau_S")},
    "klmse-sequential": {
        ("none", "WRN-16-2 KL tau=3"), ("none", "WRN-16-2 KL tau=20"), ("none", "WRN-16-2 MSE"),
        ("WRN-16-4 (CE)", "WRN-16-2 CE"), ("WRN-28-4 (CE)", "WRN-16-2 CE"),
        ("WRN-28-4 (CE) -> WRN-16-4 (KL tau=3)", "WRN-16-2 CE"), ("WRN-28-4 (CE) -> WRN-16-4 (MSE)", "WRN-16-2 CE"),
    },
}
DASH = {
    "atkd-table3": {("FSP", "WRN-40-2/WRN-40-1")},
    "atkd-table6": {("KD", "ResNet101"), ("ES", "ResNet101"), ("KD", "ResNet152")},
    "atkd-table7": {("Ssharpness (60 epochs)", "ResNet14")},
    "klmse-sequential": {("none", "WRN-28-4"), ("none", "WRN-16-4"), ("WRN-16-4 (CE)", "WRN-28-4"), ("WRN-28-4 (CE)", "WRN-16-4")},
}


@pytest.fixture(scope="module")
def tables():
    return {t: load_published(t) for t in published_ids()}


def test_every_expected_table_is_there():
    ids = published_ids()
    assert set(SHAPES) <= set(ids), sorted(set(SHAPES) - set(ids))
    assert published_ids(TABLES) == ids


@pytest.mark.parametrize("table_id", sorted(SHAPES))
def test_shape_header_and_cells(tables, table_id):
    t = tables[table_id]
    assert t.table_id == table_id
    assert t.shape == SHAPES[table_id]
    assert len(t.cells) == t.shape[0] * t.shape[1]
    for key in ("paper", "source", "caption", "metric", "notes"):
        assert t.header.get(key), key
    assert t.header["source"].startswith("papers/")
    for cell in t.cells.values():
        assert parse_cell(cell.raw) == cell
        assert not cell.dash or cell.value is None
    empty = {k for k, c in t.cells.items() if c.empty}
    dash = {k for k, c in t.cells.items() if c.dash}
    assert empty == EMPTY.get(table_id, set())
    assert dash == DASH.get(table_id, set())


@pytest.mark.parametrize("table_id", sorted(SPOT))
def test_spot_checks_against_the_paper(tables, table_id):
    t = tables[table_id]
    for row, col, raw in SPOT[table_id]:
        cell = t.cell(row, col)
        assert cell.raw == raw, (row, col)
        assert cell == parse_cell(raw)


def test_values_and_top5(tables):
    c = tables["lskd-table2a"].cell("Teacher", "ResNet-50 alpha=0.0")
    assert (c.value, c.top5, c.std, c.dash) == (76.130, 92.862, None, False)
    assert tables["ats-table2"].value("Teacher", "ResNet110/VGG8") == 74.09
    assert tables["atkd-table12"].value("Logits Sum", "WRN-16-2") == pytest.approx(-6.1e-6)
    assert tables["atkd-table3"].value("FSP", "WRN-40-2/WRN-40-1") is None
    lskd = [tables[t] for t in ("lskd-table2a", "lskd-table2b", "lskd-table4")]
    for t in lskd:
        assert t.rows == ["Teacher", "T=1", "T=2", "T=3", "T=64"]
        assert all(c.top5 is not None for c in t.cells.values())
    assert all(c.top5 is None for tid, t in tables.items() if not tid.startswith("lskd") for c in t.cells.values())


def test_row_labels_and_columns_as_printed(tables):
    assert tables["ats-table2"].rows == ["Teacher", "NoKD", "ST-KD", "KD", "ESKD", "TAKD", "SCKD", "KD+ATS", "Ens",
                                         "ResKD", "KD+ATS+Ens"]
    assert tables["ats-table6"].rows[-1] == "KD+ATS"
    assert tables["ats-table7"].cols == ["Teacher", "Student", "KD", "CC", "NST", "CRD", "IE-AT", "ReKD", "Ours"]
    assert tables["atkd-table3"].rows[0:2] == ["Teacher", "Student"] and tables["atkd-table3"].rows[-1] == "ATKD"
    assert tables["klmse-table1"].rows == ["WRN-16-2", "WRN-16-4", "WRN-28-2", "WRN-28-4", "WRN-40-6"]
    assert tables["lskd-table2a"].cols == ["ResNet-18 alpha=0.0", "ResNet-18 alpha=0.1", "ResNet-50 alpha=0.0",
                                           "ResNet-50 alpha=0.1"]


def test_documented_decodings_and_errata(tables):
    assert "74.31" in tables["ats-table7"].header["notes"] and "69.06" in tables["ats-table7"].header["notes"]
    notes = tables["lskd-table2a"].header["notes"]
    for x in ("68.799", "67.699", "64.506", "D.1"):
        assert x in notes
    assert "not conducted" in tables["atkd-table6"].header["notes"]
    assert "WRN-16-1" in tables["atkd-table9"].header["notes"]


def test_averages_match_the_printed_avg(tables):
    for tid in ("ats-table2", "ats-table3", "ats-table6"):
        t = tables[tid]
        for row in t.rows[1:]:
            vals = [t.value(row, c) for c in t.cols[:-1]]
            assert sum(vals) / len(vals) == pytest.approx(t.value(row, "Avg"), abs=0.006), (tid, row)


def test_cross_table_consistency(tables):
    a1, a5 = tables["atkd-table1"], tables["atkd-table5"]
    for col in a1.cols:
        assert a1.cell("Student Acc", col).raw == a5.cell("Test acc/Vanilla KD", col).raw
        assert a1.cell("KD loss", col).raw == a5.cell("Training loss/Vanilla KD", col).raw
    a2, a7 = tables["atkd-table2"], tables["atkd-table7"]
    assert [a2.cell("Ssharpness", c).raw for c in a2.cols] == [a7.cell("Ssharpness (240 epochs)", c).raw for c in a7.cols]
    k1, ks = tables["klmse-table1"], tables["klmse-sequential"]
    for obj in ("KL tau=3", "KL tau=20", "MSE"):
        assert ks.value("WRN-28-4 (CE)", f"WRN-16-2 {obj}") == k1.value("WRN-16-2", obj)
    assert ks.value("none", "WRN-16-2 CE") == k1.value("WRN-16-2", "CE")
    assert ks.value("WRN-16-4 (CE)", "WRN-16-4") == k1.value("WRN-16-4", "CE")
    assert ks.value("WRN-28-4 (CE) -> WRN-16-4 (KL tau=3)", "WRN-16-4") == k1.value("WRN-16-4", "KL tau=3")
    assert ks.value("WRN-28-4 (CE) -> WRN-16-4 (MSE)", "WRN-16-4") == k1.value("WRN-16-4", "MSE")
    l2a, l2b, l4 = tables["lskd-table2a"], tables["lskd-table2b"], tables["lskd-table4"]
    for a in ("0.0", "0.1"):
        assert l2b.cell("Teacher", f"ResNet-18 alpha={a}") == l4.cell("Teacher", f"MobileNet-V2 alpha={a}")
        assert l2a.cell("Teacher", f"ResNet-18 alpha={a}") == l2a.cell("Teacher", f"ResNet-50 alpha={a}")


PAPER_NUMBERS = REPO / "tests" / "paper_numbers.csv"
NUMBER_TOKEN = re.compile(r"-?\d*\.?\d+(?:e-\d+)?")  # a number as the paper text prints it
# (table, row, col) -> (digits as printed, factor to the table's unit): 59.8K parameters = 0.0598 M
CONVERTED = {("ats-table5", "Google Speech Commands Students/DSCNN", "N.P (M)"): ("59.8", 1e-3)}


def _papers_dir():
    for base in (REPO / "shared", REPO.parent / "shared"):
        if (base / "papers").is_dir():
            return base / "papers"
    return None


def _paper_numbers() -> dict:
    """(table, row, col) -> [(number as printed, paper file, line)], from tests/paper_numbers.csv."""
    lines = [line for line in PAPER_NUMBERS.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    out: dict = {}
    for rec in csv.DictReader(lines):
        key = (rec["table"], rec["row"], rec["col"])
        out.setdefault(key, []).append((rec["number"], rec["paper"], int(rec["line"])))
    return out


def test_every_number_is_on_record_as_the_paper_prints_it(tables):
    """In every clone: each number of tables/*.csv has the paper's digits on record, with the paper
    file its table names and the line that prints it; the record holds nothing else."""
    recorded = _paper_numbers()
    numbers = set()
    for tid, t in tables.items():
        for (row, col), cell in t.cells.items():
            if cell.value is None:
                continue
            key = (tid, row, col)
            numbers.add(key)
            assert key in recorded, key
            assert all(t.header["source"].startswith(f"papers/{paper},") for _, paper, _ in recorded[key]), key
            printed = [number for number, _, _ in recorded[key]]
            if key in CONVERTED:
                digits, factor = CONVERTED[key]
                assert printed == [digits] and cell.value == pytest.approx(float(digits) * factor), key
            else:
                assert printed == cell.raw.split("/"), key
    assert set(recorded) == numbers


@pytest.mark.skipif(_papers_dir() is None,
                    reason="shared/papers not beside the repository: the record of its numbers is checked instead")
def test_every_number_occurs_in_the_paper_text():
    """Where the paper texts are at hand: every recorded number is printed on its recorded line."""
    papers = _papers_dir()
    texts: dict = {}
    for key, entries in _paper_numbers().items():
        for number, paper, line in entries:
            text = texts.setdefault(paper, (papers / paper).read_text(encoding="utf-8").splitlines())
            printed = set(NUMBER_TOKEN.findall(text[line - 1]))
            assert number in printed or number.lstrip("-") in printed, (key, number, paper, line)


def test_pandas_reads_every_file():
    pd = pytest.importorskip("pandas")
    for tid in SHAPES:
        df = pd.read_csv(TABLES / f"{tid}.csv", comment="#", dtype=str, keep_default_na=False)
        t = load_published(tid)
        assert list(df.columns) == ["row"] + t.cols
        assert list(df["row"]) == t.rows
        for rec in df.to_numpy().tolist():
            assert rec[1:] == [t.cell(rec[0], col).raw for col in t.cols]


# ---------------------------------------------------------------- parse_cell

@pytest.mark.parametrize(
    "text, expected",
    [
        ("71.35", Cell("71.35", 71.35)),
        ("68", Cell("68", 68.0)),
        ("0.09", Cell("0.09", 0.09)),
        (".5", Cell(".5", 0.5)),
        ("-5e-5", Cell("-5e-5", -5e-5)),
        ("-4.7E-5", Cell("-4.7E-5", -4.7e-5)),
        ("+1.5", Cell("+1.5", 1.5)),
        ("71.547/90.297", Cell("71.547/90.297", 71.547, top5=90.297)),
        ("80.609/95.47", Cell("80.609/95.47", 80.609, top5=95.47)),
        ("71.547±0.122", Cell("71.547±0.122", 71.547, std=0.122)),
        ("81.895±0.000", Cell("81.895±0.000", 81.895, std=0.0)),
        ("71.547±0.122/90.297±0.175", Cell("71.547±0.122/90.297±0.175", 71.547, top5=90.297, std=0.122,
                                           top5_std=0.175)),
        ("-", Cell("-", dash=True)),
        ("", Cell("")),
        ("   ", Cell("")),
        (" 74.09 ", Cell("74.09", 74.09)),
    ],
)
def test_parse_cell_accepts(text, expected):
    cell = parse_cell(text)
    assert cell == expected
    assert cell.empty == (expected.raw == "")


@pytest.mark.parametrize(
    "text",
    ["abc", "--", "- 1", "70.2%", "1,5", "1/2/3", "71.5 / 90.2", "/90", "71.5/", "±0.1", "71.5±", "71.5±-0.1",
     "71.5±0.1/90", "71.5/90±0.1", "71.5±-0.1/90±0.1", "nan", "inf", "-inf", "1e400", "X", "ATKD", "74.09*", "7 4", "\u221275.1", "0x10", "1_000"],
)
def test_parse_cell_rejects(text):
    with pytest.raises(ValueError):
        parse_cell(text)


def test_parse_cell_rejects_non_strings():
    with pytest.raises(ValueError):
        parse_cell(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        parse_cell(71.35)  # type: ignore[arg-type]


# ---------------------------------------------------------------- loader errors

def test_unknown_id_names_it():
    with pytest.raises(ValueError, match="ats-table99"):
        load_published("ats-table99")
    with pytest.raises(BadInput):
        load_published("ats-table99")
    for bad in ("../tables/ats-table2", "ats-table2.csv", "", "ATS-TABLE2", "tables/ats-table2"):
        with pytest.raises(UnknownTable):
            load_published(bad)


GOOD = """# paper: P
# source: papers/x.txt, Table 1
# caption: C
# metric: M
# notes: first line
#   second line
row,a,b
r1,1.5,-
r2,,2/3
"""


def _write(tmp_path, text, name="t-1"):
    (tmp_path / f"{name}.csv").write_text(text, encoding="utf-8")
    return name


def test_loader_reads_a_minimal_file(tmp_path):
    t = load_published(_write(tmp_path, GOOD), tmp_path)
    assert t.header["notes"] == "first line second line"
    assert t.rows == ["r1", "r2"] and t.cols == ["a", "b"] and t.shape == (2, 2)
    assert t.cell("r1", "b").dash and t.cell("r2", "a").empty and t.value("r2", "b") == 2.0
    assert t.numbers() == {("r1", "a"): 1.5, ("r2", "b"): 2.0}
    assert published_ids(tmp_path) == ["t-1"]
    assert published_ids(tmp_path / "missing") == []
    with pytest.raises(KeyError, match="no row"):
        t.cell("r3", "a")
    with pytest.raises(KeyError, match="no column"):
        t.cell("r1", "c")


@pytest.mark.parametrize(
    "mutate, problem",
    [
        (lambda s: s.replace("r1,1.5,-", "r1,1.5,abc"), "cannot parse"),
        (lambda s: s.replace("r2,,2/3", "r1,,2/3"), "duplicate row"),
        (lambda s: s.replace("r2,,2/3", "r2,2/3"), "fields"),
        (lambda s: s.replace("row,a,b", "row,a,a"), "duplicate column"),
        (lambda s: s.replace("row,a,b", "label,a,b"), "'row'"),
        (lambda s: s.replace("# metric: M\n", ""), "metric"),
        (lambda s: s + "# trailing comment\n", "'#'"),
        (lambda s: s.replace("r1,1.5,-", "r1,1.5,1#2"), "'#'"),
        (lambda s: s.replace("# paper: P", "#paper P"), "header line"),
        (lambda s: s.replace("# notes: first line", "# caption: again"), "twice"),
        (lambda s: s.replace("r1,1.5,-\nr2,,2/3\n", ""), "no data rows"),
        (lambda s: s.replace("r2,,2/3", ",,2/3"), "empty row label"),
    ],
)
def test_loader_rejects_malformed_files(tmp_path, mutate, problem):
    name = _write(tmp_path, mutate(GOOD))
    with pytest.raises(ValueError, match=re.escape(problem)):
        load_published(name, tmp_path)


def test_values_are_finite(tables):
    for t in tables.values():
        for c in t.cells.values():
            for v in (c.value, c.top5, c.std):
                assert v is None or math.isfinite(v)


# ---------------------------------------------------------------- stds printed apart (LS-KD App. D)

# table id -> (the line of papers/lskd.txt that prints its App. D table, number of cells with a std)
APP_D = {"lskd-table2a": (208, 16), "lskd-table2b": (209, 16), "lskd-table4": (211, 8)}


@pytest.mark.parametrize("table_id", sorted(APP_D))
def test_app_d_stds_cover_every_student_cell_as_printed(table_id):
    line, count = APP_D[table_id]
    stds = load_stds(table_id)
    main = load_published(table_id)
    assert len(stds) == count
    assert {r for r, _ in stds} == set(main.rows) - {"Teacher"} and {c for _, c in stds} == set(main.cols)
    papers = _papers_dir()
    if papers is not None:  # every mean and std is printed on the App. D line, digit for digit
        printed = set(NUMBER_TOKEN.findall((papers / "lskd.txt").read_text(encoding="utf-8").splitlines()[line - 1]))
        for cell in stds.values():
            assert set(NUMBER_TOKEN.findall(cell.raw)) <= printed, cell.raw


def test_d1_means_that_differ_from_table_2a_are_exactly_the_declared_ones():
    stds, main = load_stds("lskd-table2a"), load_published("lskd-table2a")
    differ = {key for key, c in stds.items() if c.value != main.cells[key].value}
    assert differ == {(f"T={t}", "ResNet-18 alpha=0.1") for t in (2, 3, 64)}
    assert main.value("T=3", "ResNet-18 alpha=0.1") == 66.570  # the means followed are Table 2 A's
    assert published_stds("lskd-table2a")[("T=3", "ResNet-18 alpha=0.1")] == 0.079  # the std is D.1's


def test_published_stds_feed_the_verdicts_interval():
    stds = published_stds("lskd-table2b")
    assert ("Teacher", "ResNet-18 alpha=0.0") not in stds  # the paper prints no teacher std
    std = stds[("T=1", "ResNet-18 alpha=0.0")]
    assert std == 0.336
    seeds = 3  # App. C: "All experiments were repeated 3 times" (the manifest's seeds)
    # 0.8 points off: outside the 0.5 tolerance, inside the Welch interval that the paper's std widens
    assert judge(80.969, 80.169, 0.5, 0.3, 3, std, seeds)[0] == "within"
    assert judge(80.969, 80.169, 0.5, 0.3, 3, 0.0, seeds)[0] == "outside"
    assert published_stds("ats-table2") == {}


STD_MAIN = GOOD.replace("r2,,2/3", "r2,,2/3\nr3,4.5,5")


@pytest.mark.parametrize(
    "stds_body, problem",
    [
        ("row,a\nr1,1.6±0.1\n", "check r1 / a"),                     # a mean that differs, undeclared
        ("# differs: r1 / a\nrow,a\nr1,1.5±0.1\n", "check r1 / a"),  # declared but equal
        ("row,a\nr9,1.5±0.1\n", "row 'r9'"),
        ("row,z\nr1,1.5±0.1\n", "column 'z'"),
    ],
)
def test_stds_file_must_fit_its_table(tmp_path, stds_body, problem):
    name = _write(tmp_path, STD_MAIN)
    (tmp_path / "stds").mkdir()
    header = "# paper: P\n# source: papers/x.txt, Table D\n# caption: C\n# metric: M\n"
    (tmp_path / "stds" / f"{name}.csv").write_text(header + stds_body, encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(problem)):
        load_stds(name, tmp_path)


def test_stds_apart_and_inline_merge(tmp_path):
    name = _write(tmp_path, STD_MAIN.replace("r3,4.5,5", "r3,4.5±0.2,5"))
    (tmp_path / "stds").mkdir()
    (tmp_path / "stds" / f"{name}.csv").write_text(
        "# paper: P\n# source: s\n# caption: C\n# metric: M\nrow,a\nr1,1.5±0.1\n", encoding="utf-8")
    assert published_stds(name, tmp_path) == {("r1", "a"): 0.1, ("r3", "a"): 0.2}
    assert published_stds(_write(tmp_path, GOOD, "t-2"), tmp_path) == {}
