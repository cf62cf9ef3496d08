"""What makes planning fast gives what the slow way gave: libyaml's parser against PyYAML's,
copy_tree against deepcopy, schema._same and canonical_json against plain JSON, and the declared
fields under a prefix found again when the schema changes. (The planner's memo:
tests/test_resolvememo.py; run ids: goldens/run_ids.json.)"""

import copy
import itertools
import json
import math
import subprocess
from pathlib import Path

import pytest
import yaml

from benchmark import schema, spec, yamlfile
from benchmark.errors import BadInput

REPO = Path(__file__).resolve().parent.parent


def _repo_yaml_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "*.yaml", "*.yml"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.split()
    return [REPO / f for f in out]


def _shared(tree, seen=None, path="", out=None) -> list:
    """Where a tree holds one object twice (a YAML anchor): [(path, path of the first place)]."""
    if out is None:
        out, seen = [], {}
    if isinstance(tree, (dict, list)):
        if id(tree) in seen:
            out.append((path, seen[id(tree)]))
            return out
        seen[id(tree)] = path
        for k, v in (tree.items() if isinstance(tree, dict) else enumerate(tree)):
            _shared(v, seen, f"{path}/{k!r}", out)
    return out


def test_every_yaml_file_of_the_repository_reads_the_same_with_either_parser():
    files = _repo_yaml_files()
    assert len(files) > 50
    if yamlfile._FastStrictLoader is None:  # PyYAML without libyaml: load_yaml is the pure-Python one
        return
    anchored = 0
    for path in files:
        text = path.read_text()
        slow = yaml.load(text, Loader=yamlfile._StrictLoader)
        fast = yaml.load(text, Loader=yamlfile._FastStrictLoader)
        assert repr(fast) == repr(slow), path  # types too: 1 is not 1.0, a date stays a date
        assert _shared(fast) == _shared(slow), path
        anchored += bool(_shared(slow))
    assert anchored  # the manifests use anchors: the sharing was compared, not only the values


@pytest.mark.parametrize("text", [
    "a: [1, 2\n", "a: 1\n\tb: 2\n", "seed: 0\nmodel: x\nseed: 5\n", "a: b: c\n", "- a\nb: 1\n", "a: !!python/name:os.system\n",
    "x: &a [1]\ny: *b\n"])
def test_a_broken_file_is_worded_as_the_pure_python_parser_words_it(text, tmp_path, monkeypatch):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(BadInput) as fast:
        yamlfile.load_yaml(path)
    monkeypatch.setattr(yamlfile, "_FastStrictLoader", None)
    with pytest.raises(BadInput) as slow:
        yamlfile.load_yaml(path)
    assert str(fast.value) == str(slow.value)
    assert "line" in str(fast.value)


def test_copy_tree_is_deepcopy_sharing_included():
    manifest = yamlfile.load_yaml(REPO / "manifests" / "atkd" / "atkd-table5.yaml")
    assert _shared(manifest)  # its rows share `set:` mappings through anchors
    odd = {"t": (1, [2]), "s": {3}, "f": -0.0, "inf": math.inf, "m": manifest, "again": manifest["rows"]}
    for tree in (manifest, odd):
        ours, theirs = spec.copy_tree(tree), copy.deepcopy(tree)
        assert repr(ours) == repr(theirs) and _shared(ours) == _shared(theirs)
        originals = {id(x) for x in _walk(tree)}
        assert not any(id(x) in originals for x in _walk(ours))  # nothing mutable is the original's


def _walk(tree):
    if isinstance(tree, (dict, list, set)):
        yield tree
        for v in (tree.values() if isinstance(tree, dict) else tree):
            yield from _walk(v)
    elif isinstance(tree, tuple):
        for v in tree:
            yield from _walk(v)


class _Str:
    def __str__(self):
        return "a"


SCALARS = [0, 1, -1, 2 ** 70, 0.0, -0.0, 1.0, 1e-4, math.inf, -math.inf, math.nan, True, False, None,
           "", "a", "1", "null", "true", (1,), _Str()]
VALUES = SCALARS + [[x] for x in SCALARS] + [[1, 2], [1, 2.0], [[1]], [[1.0]], {"a": 1}, {"a": 1.0},
                                             {"a": 1, "b": [1]}, {"b": [1], "a": 1}, {1: 2}, {"1": 2},
                                             {"a": _Str()}, {"a": "a"}]


def test_same_is_equality_as_json():
    def as_json(v):
        return json.dumps(v, sort_keys=True, default=str)

    for a, b in itertools.product(VALUES, VALUES):
        assert schema._same(a, b) == (as_json(a) == as_json(b)), (a, b)


def _canonical_by_fixing(obj) -> str:
    """canonical_json as it was: every infinity written as a string, then JSON."""
    def fix(v):
        if isinstance(v, float) and math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [fix(x) for x in v]
        return v
    return json.dumps(fix(obj), sort_keys=True, separators=(",", ":"))


@pytest.mark.parametrize("obj", [
    {"b": 1, "a": [1.0, (2, 3)], "c": {"tau": 4.0}},
    {"loss": {"name": "kd", "tau": math.inf}},
    {"x": [-math.inf, 1]},
    {"x": math.nan},
    {"x": {"y": [{"z": -0.0}]}},
])
def test_canonical_json_is_what_fixing_every_infinity_gave(obj):
    assert spec.canonical_json(obj) == _canonical_by_fixing(obj)


def test_declared_fields_are_found_again_when_the_schema_changes(monkeypatch):
    """check_fields lists the fields under a prefix once; a field declared later (as a test or
    a new option does) is checked from then on, and no longer once it is gone."""
    recipe = {"made_up": "seven"}
    assert schema.check_fields(dict(recipe), "recipe") == []
    with monkeypatch.context() as m:
        m.setitem(schema.CONFIG_FIELDS, "recipe.made_up", schema.Option(7, "int"))
        assert schema.check_fields(dict(recipe), "recipe") == [("recipe.made_up", "must be an integer, got 'seven'")]
        m.setitem(schema.CONFIG_FIELDS, "recipe.made_up", schema.Option("x", "str"))  # replaced, same count
        assert schema.check_fields(dict(recipe), "recipe") == []
        m.setitem(schema.CONFIG_FIELDS, "recipe.made_up", schema.Option(7, "int"))
        assert schema.check_fields(dict(recipe), "recipe") != []
    assert schema.check_fields(dict(recipe), "recipe") == []
