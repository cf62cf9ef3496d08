"""Reading YAML files (benchmark/yamlfile.py): safe, strict about keys given twice, and every problem
one BadInput naming the file."""

import pytest

from benchmark.errors import BadInput
from benchmark.yamlfile import load_config, load_yaml, read_text


def _bad(path) -> str:
    with pytest.raises(BadInput) as err:
        load_yaml(path)
    return str(err.value)


def test_a_file_reads_as_safe_yaml_with_merge_keys(tmp_path):
    p = tmp_path / "a.yaml"
    p.write_text("base: &b {lr: 0.1, wd: 5}\nrun:\n  <<: *b\n  lr: 0.2\n")
    assert load_yaml(p) == {"base": {"lr": 0.1, "wd": 5}, "run": {"lr": 0.2, "wd": 5}}
    assert read_text(p).startswith("base:")


def test_each_problem_is_one_line_naming_the_file(tmp_path):
    assert _bad(tmp_path / "nope.yaml") == f"{tmp_path / 'nope.yaml'}: no such file"
    (tmp_path / "empty.yaml").write_text("  \n")
    assert _bad(tmp_path / "empty.yaml") == f"{tmp_path / 'empty.yaml'}: the file is empty"
    (tmp_path / "twice.yaml").write_text("seed: 0\nlr: 1\nseed: 5\n")
    assert _bad(tmp_path / "twice.yaml") == \
        f"{tmp_path / 'twice.yaml'}: duplicate key at line 3, column 1: duplicate key 'seed' (the file gives it twice)"
    (tmp_path / "syntax.yaml").write_text("a: [1, 2\n")
    msg = _bad(tmp_path / "syntax.yaml")
    assert msg.startswith(f"{tmp_path / 'syntax.yaml'}: YAML syntax error at line ") and "\n" not in msg
    (tmp_path / "code.yaml").write_text("x: !!python/object/apply:os.system ['true']\n")
    assert "YAML syntax error" in _bad(tmp_path / "code.yaml")  # a safe loader: no Python objects
    (tmp_path / "bytes.yaml").write_bytes(b"\xff\xfe\xfa")
    assert _bad(tmp_path / "bytes.yaml").startswith(f"{tmp_path / 'bytes.yaml'}: cannot read: ")


def test_a_stored_config_json_with_an_infinite_tau_reads_back_as_that_run(tmp_path):
    """A store's config.json spells tau = inf as Infinity (Python's json); read as YAML it was the
    string 'Infinity' and `train` refused the run's own config. load_config reads .json as JSON."""
    import json
    import math

    from benchmark.engine import config as C

    cfg = C.resolve({"dataset": "cifar10", "model": "resnet8", "data": {"source": "synthetic"},
                     "loss": {"name": "kd", "tau": math.inf}, "teacher": {"run": "0" * 16}}, "test")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    assert "Infinity" in path.read_text()
    assert load_yaml(path)["loss"]["tau"] == "Infinity"  # what `train` saw before
    raw = load_config(path)
    assert raw["loss"]["tau"] == math.inf
    assert C.run_id(C.resolve(raw, str(path))) == C.run_id(cfg)
    (tmp_path / "bad.json").write_text('{"model": "resnet8",\n "loss": }')
    with pytest.raises(BadInput) as err:
        load_config(tmp_path / "bad.json")
    assert "bad.json" in str(err.value) and "line 2" in str(err.value)
    (tmp_path / "run.yaml").write_text("model: resnet8\n")
    assert load_config(tmp_path / "run.yaml") == {"model": "resnet8"}
