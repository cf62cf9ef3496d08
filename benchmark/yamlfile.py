"""Reading YAML files safely, with every problem reported as a BadInput naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from .errors import BadInput


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key, mark):
        self.problem, self.problem_mark = f"duplicate key {key!r} (the file gives it twice)", mark


class _RefuseDuplicateKeys:
    """A mapping with a key given twice is an error (PyYAML keeps the last silently: `seed: 0` ...
    `seed: 5` would train seed 5 without a word)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                if key in seen:
                    raise _DuplicateKey(key, key_node.start_mark)
                seen.add(key)
            except TypeError:  # an unhashable key: SafeLoader reports it below
                pass
        return super().construct_mapping(node, deep=deep)


class _StrictLoader(_RefuseDuplicateKeys, yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys: the reference, and what words every error."""


# libyaml's parser under the same safe constructor: about 10x faster on the catalogue's files, the
# same documents (tests/test_plan_speed.py compares every YAML file of the repository)
if getattr(yaml, "__with_libyaml__", False):
    class _FastStrictLoader(_RefuseDuplicateKeys, yaml.CSafeLoader):
        """CSafeLoader (libyaml's parser, the same constructor) that refuses duplicate keys."""
else:
    _FastStrictLoader = None


def read_text(path: str | Path) -> str:
    """A data file's text; a missing or unreadable file is a BadInput naming it."""
    try:
        return Path(path).read_text()
    except FileNotFoundError:
        raise BadInput(path, None, "no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise BadInput(path, None, f"cannot read: {err}") from None


def load_yaml(path: str | Path):
    """Parse a YAML file safely; every problem is a BadInput naming the file."""
    path = Path(path)
    text = read_text(path)
    if not text.strip():
        raise BadInput(path, None, "the file is empty")
    if _FastStrictLoader is not None:
        try:
            return yaml.load(text, Loader=_FastStrictLoader)  # safe: a CSafeLoader subclass
        except yaml.YAMLError:
            pass  # the pure-Python parser below words the error (line, column, problem) as always
    try:
        return yaml.load(text, Loader=_StrictLoader)  # safe: a SafeLoader subclass
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        kind = "" if isinstance(err, _DuplicateKey) else "YAML syntax error"
        raise BadInput(path, None, f"{kind or 'duplicate key'}{where}: {problem}" if not kind
                       else f"{kind}{where}: {problem}") from None


def load_config(path: str | Path):
    """A run config file: YAML, or the JSON a store writes (``runs/<id>/config.json``). The store's
    JSON spells an infinite temperature ``Infinity``, which YAML reads as a string, so a ``.json``
    file is read as JSON; every problem is a BadInput naming the file."""
    path = Path(path)
    if path.suffix.lower() != ".json":
        return load_yaml(path)
    text = read_text(path)
    if not text.strip():
        raise BadInput(path, None, "the file is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise BadInput(path, None, f"JSON syntax error at line {err.lineno}, column {err.colno}: {err.msg}") from None
