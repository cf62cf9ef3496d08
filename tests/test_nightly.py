"""Nightly regression runs measure tonight's code: a one-line change to a loss is caught.

The test runs two nights of this checkout on the test catalog's klmse-table4 (smoke profile; in
this process, the workers they start are processes), then a third night in a process of its own
on a copy of the package (runner.py, benchmark/, goldens/, tables/) with one line of the KD loss
changed, as a developer would.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from benchmark.commands import canary
from benchmark.commands import nightly as N
from tests.helpers import REPO, cli

CATALOG = str(REPO / "tests" / "catalog")
KD_LINE = "F.log_softmax(z_t / tau, dim=1)"  # the teacher side of the KD divergence (losses._soft_divergence)


@pytest.fixture()
def checkout(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    shutil.copy(REPO / "runner.py", code / "runner.py")
    for folder in ("benchmark", "goldens", "tables"):
        shutil.copytree(REPO / folder, code / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return code


def night_args(tmp_path, date):
    return ["nightly", "--tables", "klmse-table4", "--store", str(tmp_path / "store"), "--out",
            str(tmp_path / "nightly"), "--date", date, "--profile", "smoke", "--device", "cpu", "--quiet",
            "--workers", "1"]


def night(code, tmp_path, date):
    """A night of the code in ``code`` (a copy of the package), in a process of its own."""
    env = {**os.environ, "KD_REPRO_CATALOG": CATALOG, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(code / "runner.py"), *night_args(tmp_path, date)],
                          env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)


@pytest.mark.heavy
def test_a_one_line_loss_change_fails_the_next_night(checkout, tmp_path, monkeypatch):
    monkeypatch.setenv("KD_REPRO_CATALOG", CATALOG)
    first = cli(*night_args(tmp_path, "2026-01-01"))  # this checkout's code, main() in this process
    assert first.returncode == 0, first.stdout + first.stderr
    assert "training afresh" in first.stdout and "0 regression(s) (baseline)" in first.stdout
    snap = json.loads((tmp_path / "nightly" / "2026-01-01" / "nightly.json").read_text())
    assert set(snap["canary"]["runs"]) >= {"kd", "ft", "fitnet"}

    same = cli(*night_args(tmp_path, "2026-01-02"))  # unchanged code: the same store, nothing trained
    assert same.returncode == 0, same.stdout + same.stderr
    assert "reusing" in same.stdout and "0 regression(s) against 2026-01-01" in same.stdout
    assert "runs, " in same.stdout and " already done" in same.stdout

    # A damaged snapshot of an earlier night is skipped with one warning, never a crash.
    (tmp_path / "nightly" / "2026-01-02" / "nightly.json").write_text("{not json")
    losses = checkout / "benchmark" / "engine" / "losses.py"
    text = losses.read_text()
    assert text.count(KD_LINE) == 1
    losses.write_text(text.replace(KD_LINE, KD_LINE.replace("z_t / tau", "z_t / (tau * 1.001)")))

    changed = night(checkout, tmp_path, "2026-01-03")
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert "training afresh" in changed.stdout  # new code, new store: every run trained again
    assert "skipping unreadable" in changed.stderr and changed.stderr.count("\n") == 1
    assert "against 2026-01-01" in changed.stdout
    out = changed.stdout
    # The float64 loss probe (no training) catches it on every platform; the trained losses are
    # compared bit for bit only on the golden's platform (elsewhere within the measured drift,
    # which a 0.1 % change of tau can hide).
    assert "REGRESSION (goldens) canary kd: loss_probe golden " in out
    if canary.load_golden()["platform"] == canary.platform_key():
        assert "REGRESSION (goldens) canary kd: first_steps_loss golden [" in out
    assert "REGRESSION canary kd: first_steps_loss last night [" in out
    # only the runs whose loss uses that line moved
    moved = {line.split("canary ")[1].split(":")[0] for line in out.splitlines() if "REGRESSION (goldens)" in line}
    assert moved == {"kd"}, moved  # feature methods have KD weight 0; ATS, ATKD, tau=inf have their own code
    md = (tmp_path / "nightly" / "2026-01-03" / "nightly.md").read_text()
    assert "canary kd: loss_probe golden" in md and "## Canary history" in md
    assert (tmp_path / "nightly" / "2026-01-03" / "canary-trend.png").stat().st_size > 0
    stores = sorted(p.name for p in (tmp_path / "store").iterdir())
    assert len(stores) == 2 and all(s.startswith("code-") for s in stores)


def test_history_skips_damaged_snapshots_and_later_dates(tmp_path):
    for date, text in (("2026-02-01", json.dumps({"date": "2026-02-01", "tables": {}})),
                       ("2026-02-02", "[1, 2]"), ("2026-02-03", json.dumps({"date": "2026-02-03", "tables": {}}))):
        (tmp_path / date).mkdir()
        (tmp_path / date / "nightly.json").write_text(text)
    warnings = []
    past = N.history(tmp_path, "2026-02-03", warn=warnings.append)
    assert [n["date"] for n in past] == ["2026-02-01"]
    assert len(warnings) == 1 and "2026-02-02" in warnings[0]


def test_prune_keeps_the_most_recent_code_stores_and_only_its_own(tmp_path):
    made = []
    for i, date in enumerate(["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"]):
        path, reused = N.night_store(tmp_path, f"{i:x}" * 64, {}, date)
        assert not reused
        made.append(path)
    (tmp_path / "code-foreign").mkdir()  # not made by the nightly: never removed
    removed = N.prune_stores(tmp_path, keep=2, current=made[-1])
    assert sorted(removed) == sorted(made[:2])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([made[2].name, made[3].name, "code-foreign"])
    again, reused = N.night_store(tmp_path, "3" * 64, {}, "2026-03-05")
    assert reused and again == made[3]


def test_fingerprint_follows_the_source(tmp_path, monkeypatch):
    a, env = N.fingerprint("cpu")
    b, _ = N.fingerprint("cuda")
    assert a != b and env["device"] == "cpu" and env["files"] > 30
    fast, fast_env = N.fingerprint("cpu", "fast")  # another policy trains other bits: a store of its own
    assert fast != a and (env["numerics"], fast_env["numerics"]) == ("reproducible", "fast")
    catalog = tmp_path / "catalog"
    shutil.copytree(CATALOG, catalog)
    monkeypatch.setenv("KD_REPRO_CATALOG", str(catalog))
    c, _ = N.fingerprint("cpu")
    recipe = next((catalog / "manifests").rglob("*.yaml"))
    recipe.write_text(recipe.read_text() + "\n# a comment\n")
    d, _ = N.fingerprint("cpu")
    assert c != d
