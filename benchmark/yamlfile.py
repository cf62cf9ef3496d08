"""Reading YAML files safely, with every problem reported as a BadInput naming the file."""

from __future__ import annotations

from pathlib import Path

import yaml

from .errors import BadInput


def load_yaml(path: str | Path):
    """Parse a YAML file safely; every problem is a BadInput naming the file."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise BadInput(path, None, "no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise BadInput(path, None, f"cannot read: {err}") from None
    if not text.strip():
        raise BadInput(path, None, "the file is empty")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise BadInput(path, None, f"YAML syntax error{where}: {problem}") from None
