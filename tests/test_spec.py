"""Run ids and spec merging (benchmark/spec.py)."""

import ast
import sys
from pathlib import Path

from benchmark import spec


def test_spec_and_schema_are_leaves():
    """spec.py (run ids, spec merging) is imported by config, plan, manifest and store, and builds
    ids from schema.py: an import of any other package module from either would bring back the cycle
    they exist to break (and the schema must be readable without torch)."""
    from benchmark import schema

    for module, allowed in ((spec, {"schema"}), (schema, set())):
        tree = ast.parse(Path(module.__file__).read_text())
        imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level] + \
            [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        relative = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level}
        assert imported and all(m in sys.stdlib_module_names or m == "__future__" for m in imported), imported
        assert relative == allowed, (module.__name__, relative)


def test_merging_replaces_a_mapping_of_another_name_and_the_teacher_whole():
    base = {"loss": {"name": "kd", "tau": 4.0}, "recipe": {"epochs": 240, "optimizer": {"lr": 0.05}},
            "teacher": {"run": {"model": "resnet56"}, "x": 1}}
    assert spec.merge_spec(base, {"loss": {"tau": 2.0}, "recipe": {"optimizer": {"lr": 0.1}}}) == \
        {"loss": {"name": "kd", "tau": 2.0}, "recipe": {"epochs": 240, "optimizer": {"lr": 0.1}},
         "teacher": {"run": {"model": "resnet56"}, "x": 1}}
    assert spec.merge_spec(base, {"loss": "ce"})["loss"] == {"name": "ce"}  # another loss: its own options
    assert spec.merge_spec(base, {"teacher": {"run": "abc"}})["teacher"] == {"run": "abc"}
    assert base["loss"] == {"name": "kd", "tau": 4.0}  # the base is not changed
    assert spec.set_path({"loss": "kd"}, "loss.tau", 8.0) == {"loss": {"name": "kd", "tau": 8.0}}
    assert spec.set_path(base, "teacher", None)["teacher"] is None


def test_ids_are_16_hex_and_infinity_is_canonical():
    assert spec.is_run_id("0123456789abcdef") and not spec.is_run_id("0123456789ABCDEF")
    assert not spec.is_run_id("../x") and not spec.is_run_id(None) and not spec.is_run_id("0" * 17)
    assert spec.canonical_json({"b": [float("inf"), -float("inf")], "a": 1.5}) == '{"a":1.5,"b":["inf","-inf"]}'
