"""Reading YAML files (benchmark/yamlfile.py): safe, strict about keys given twice, and every problem
one BadInput naming the file."""

import pytest

from benchmark.errors import BadInput
from benchmark.yamlfile import load_yaml, read_text


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
