"""The goldens a user's store depends on (benchmark/commands/idgolden.py): every run id
(goldens/run_ids.json) and every default of the config schema (goldens/config_schema.json). A change
that moves one fails here, naming the tables and cells (or the defaults) that moved and the command
that updates the files."""

import inspect
import json

import pytest

from benchmark import schema
from benchmark.catalog.manifest import load_manifest, manifest_paths
from benchmark.catalog.plan import Planner
from benchmark.commands import idgolden
from benchmark.engine import config as C
from benchmark.engine import losses, methods
from tests.helpers import tiny

pytestmark = pytest.mark.xdist_group("goldens")


def test_every_run_id_of_every_table_profile_and_figure_is_as_committed():
    golden = idgolden.load(idgolden.RUN_IDS_FILE)
    assert golden is not None, f"goldens/run_ids.json is missing: {idgolden.UPDATE_COMMAND}"
    now = idgolden.run_ids()
    moved = idgolden.moved(golden, now)
    assert moved == [], ("run ids moved (a user's store would retrain these runs):\n" + "\n".join(moved)
                         + f"\nif meant: {idgolden.UPDATE_COMMAND}, bump schema.ID_SCHEME and say why in the commit")
    assert set(now["tables"]) == set(manifest_paths())  # every table `list` lists ...
    assert all(set(t) == {"smoke", "quick", "paper"} for t in now["tables"].values())  # ... at every profile
    assert "ats-fig10" not in now["tables"] and now["tables"]["ats-table2"]["paper"]["figures"]["fig10"]
    waiting = [v for t in now["tables"].values() for p in t.values() for v in p["cells"].values() if isinstance(v, str)]
    assert waiting and all(v.startswith("waiting on ") for v in waiting)  # `from:` cells wait on their cell


def test_the_schemas_defaults_are_as_committed():
    """A changed default keeps the ids of runs that relied on it while they train differently: it
    must come with a new id scheme (and store migrate's rule for the old one)."""
    golden = idgolden.load(idgolden.SCHEMA_FILE)
    assert golden is not None, f"goldens/config_schema.json is missing: {idgolden.UPDATE_COMMAND}"
    now = schema.describe()
    if golden["id_scheme"] == schema.ID_SCHEME:
        changed = idgolden.schema_changes(golden, now)
        assert changed == [], ("defaults changed without a new id scheme:\n" + "\n".join(changed)
                               + "\nbump schema.ID_SCHEME, put the old defaults in schema.MIGRATION_DEFAULTS, then "
                               + idgolden.UPDATE_COMMAND)
    assert golden == now, f"options were added to benchmark/schema.py: {idgolden.UPDATE_COMMAND}"
    assert set(schema.MIGRATION_DEFAULTS) == set(range(1, schema.ID_SCHEME)), \
        "store migrate needs the defaults of every older id scheme (schema.MIGRATION_DEFAULTS)"


def test_a_changed_default_is_caught():
    golden = idgolden.load(idgolden.SCHEMA_FILE)
    now = json.loads(json.dumps(schema.describe()))
    now["methods"]["kd"]["tau"]["default"] = 3.0
    now["fields"]["recipe.epochs"]["identity"] = False
    assert idgolden.schema_changes(golden, now) == ["recipe.epochs: {'default': 240, 'identity': True} -> "
                                                    "{'default': 240, 'identity': False}",
                                                    "loss kd.tau: {'default': 4.0, 'identity': True} -> "
                                                    "{'default': 3.0, 'identity': True}"]


def _kd_with_made_up_option(default):
    """kd_terms with one more keyword-only option that changes nothing at its default."""
    sig = inspect.signature(losses.kd_terms)

    def kd(z_s, z_t, y, *, made_up=default, **params):  # noqa: ARG001 (made_up: declared, changes nothing)
        return losses.kd_terms(z_s, z_t, y, **params)

    params = [p for p in sig.parameters.values()] + [
        inspect.Parameter("made_up", inspect.Parameter.KEYWORD_ONLY, default=default)]
    kd.__signature__ = sig.replace(parameters=params)
    return kd


@pytest.fixture
def made_up_options(monkeypatch):
    """A new recipe field and a new KD option, each with a default, as a later change adds them:
    declared in the schema, filled in by resolve."""
    monkeypatch.setitem(schema.CONFIG_FIELDS, "recipe.made_up", schema.Option(7, "int"))
    monkeypatch.setitem(C.RECIPE_DEFAULTS, "made_up", 7)
    monkeypatch.setitem(schema.METHODS, "kd", {**schema.METHODS["kd"], "made_up": schema.Option(1.0, "float")})
    monkeypatch.setattr(losses, "kd_terms_made_up", _kd_with_made_up_option(1.0), raising=False)
    monkeypatch.setitem(methods.REGISTRY, "kd", methods.Entry("benchmark.engine.losses:kd_terms_made_up"))


@pytest.mark.usefixtures("made_up_options")
def test_a_new_option_with_a_default_moves_no_id_of_any_table():
    golden = idgolden.load(idgolden.RUN_IDS_FILE)
    kd = C.resolve(tiny(loss={"name": "kd"}, teacher={"run": "0" * 16}))
    assert kd["recipe"]["made_up"] == 7 and kd["loss"]["made_up"] == 1.0  # every resolved config carries them
    assert losses.make_loss("kd").params["made_up"] == 1.0  # and the method's code takes it
    planner = Planner("paper", cost=False, figures=["all"])
    for table, path in manifest_paths().items():
        plan = planner.plan_manifest(load_manifest(path))
        assert idgolden.cell_ids(plan) == golden["tables"][table]["paper"]["cells"], table
    # ... and they are part of the identity once a run sets them
    assert C.run_id(C.resolve(tiny(loss={"name": "kd", "made_up": 2.0}, teacher={"run": "0" * 16}))) != C.run_id(kd)
    assert C.run_id(C.resolve(tiny(recipe={"made_up": 8}))) != C.run_id(C.resolve(tiny()))


def test_a_new_field_without_a_default_moves_the_ids(monkeypatch):
    """What the golden test is for: a field that enters every id (no default) moves every run."""
    golden = idgolden.load(idgolden.RUN_IDS_FILE)
    monkeypatch.setitem(schema.CONFIG_FIELDS, "recipe.made_up", schema.Option(schema.REQUIRED, "int"))
    monkeypatch.setitem(C.RECIPE_DEFAULTS, "made_up", 7)
    plan = Planner("smoke", cost=False).plan_manifest(load_manifest(manifest_paths()["atkd-table5"]))
    now = {"id_scheme": golden["id_scheme"], "tables": {"atkd-table5": {"smoke": {
        "cells": idgolden.cell_ids(plan)}}}}
    only = {"id_scheme": golden["id_scheme"],
            "tables": {"atkd-table5": {"smoke": golden["tables"]["atkd-table5"]["smoke"]}}}
    moved = idgolden.moved(only, now)
    assert len(moved) == 1 and moved[0].startswith("atkd-table5 (smoke): 30 moved: cell ")
