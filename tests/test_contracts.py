"""docs/CONTRACTS.md stays true: every command it lists exists with every option it names, and
every JSON key it lists is in that command's output (on the test catalog and a store made by
migrating tests/fixtures/store-layout1, so nothing is trained here)."""

import argparse
import json
import re
import shutil

import pytest

from benchmark import cli
from tests.helpers import REPO

CONTRACTS = (REPO / "docs" / "CONTRACTS.md").read_text()


def _commands() -> list[tuple[str, list[str]]]:
    block = CONTRACTS.split("## Commands", 1)[1].split("```", 2)[1]
    out = []
    for line in block.strip().splitlines():
        words = line.split()
        assert words[:2] == ["python", "runner.py"], line
        out.append((words[2], re.findall(r"--[a-z-]+", line)))
    return out


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_listed_command_and_option_exists():
    subs = _subparsers()
    commands = _commands()
    assert {name for name, _ in commands} == set(subs)  # and every command of the CLI is listed
    for name, options in commands:
        known = {s for a in subs[name]._actions for s in a.option_strings}
        assert set(options) <= known, (name, sorted(set(options) - known))


def _keys(section: str) -> set[str]:
    line = next(line for line in CONTRACTS.splitlines() if line.startswith(f"- {section}:"))
    return {k.strip() for k in line.split(":", 1)[1].split(",")}


@pytest.fixture(scope="module")
def migrated_store(tmp_path_factory):
    """The fixture store of the previous main, migrated: finished runs to report and count."""
    mp = pytest.MonkeyPatch()
    mp.setenv("KD_REPRO_CATALOG", str(REPO / "tests" / "catalog"))
    root = tmp_path_factory.mktemp("contracts") / "store"
    shutil.copytree(REPO / "tests" / "fixtures" / "store-layout1", root)
    assert cli.main(["store", "migrate", "--store", str(root), "--apply"]) == 0
    yield root
    mp.undo()


def _json(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr().out
    assert code in (0, 1), (argv, code)
    return json.loads(out)


def test_every_listed_json_key_is_in_the_output(migrated_store, capsys):
    plan = _json(capsys, "plan", "klmse-table4", "--profile", "smoke", "--json", "--store", migrated_store)
    plan = plan[0] if isinstance(plan, list) else plan
    assert _keys("plan --json") <= set(plan)
    assert _keys("plan --json job") <= set(plan["jobs"][0])
    assert _keys("plan --json cell") <= set(plan["cells"][0])
    status = _json(capsys, "status", "--store", migrated_store, "--json")
    assert _keys("status --json") <= set(status)
    report = _json(capsys, "report", "klmse-table4", "--store", migrated_store, "--format", "json")
    assert _keys("report --format json") <= set(report)
    assert _keys("report --format json cell") <= set(report["cells"][0])
    rows = _json(capsys, "list", "--json")
    assert _keys("list --json") <= set(rows[0])


def test_the_listed_model_keys_are_the_codes():
    assert _keys("models --json") == set(cli.MODEL_KEYS)  # building every model here would take 30 s


def test_the_listed_csv_columns_are_the_codes():
    from benchmark import results
    from benchmark.results.frames import CELL_COLUMNS

    listed = CONTRACTS.split("has the columns of `benchmark.results.CELL_COLUMNS`:", 1)[1].split(".\n", 1)[0]
    assert [c.strip() for c in listed.replace("\n", " ").split(",")] == CELL_COLUMNS
    assert results.CELL_COLUMNS is CELL_COLUMNS  # the contract's name, loaded lazily from frames.py


def test_the_python_api_of_the_contracts_keeps_its_names():
    """docs/CONTRACTS.md's "Python API": benchmark.losses.make_loss and benchmark.results.runs,
    epochs and cells, wherever the modules behind them live."""
    import benchmark.losses
    from benchmark import results
    from benchmark.engine import losses
    from benchmark.results import frames

    assert benchmark.losses.make_loss is losses.make_loss
    assert (results.runs, results.epochs, results.cells) == (frames.runs, frames.epochs, frames.cells)
    with pytest.raises(AttributeError):
        results.no_such_name  # noqa: B018
