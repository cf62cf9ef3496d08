"""Small derived facts kept on disk between commands, each file valid for one stamp only.

``$KD_REPRO_CACHE/<name>.json`` (default ``~/.cache/kd-repro``) holds ``{"stamp": ..., "entries":
{key: value}}``. The stamp names everything the entries were computed from (torch's version, a
digest of the code and files they depend on); a reader with another stamp sees an empty cache.
So a cached value is always the value the current code would compute, and a cache that cannot be
read or written only makes a command slower, never wrong.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def cache_dir() -> Path:
    return Path(os.environ.get("KD_REPRO_CACHE") or Path.home() / ".cache" / "kd-repro")


def read(name: str, stamp: str) -> dict:
    try:
        doc = json.loads((cache_dir() / f"{name}.json").read_text())
    except (OSError, ValueError):
        return {}
    ok = isinstance(doc, dict) and doc.get("stamp") == stamp and isinstance(doc.get("entries"), dict)
    return doc["entries"] if ok else {}


def update(name: str, stamp: str, entries: dict) -> None:
    """Add entries (merged with what another process may have written meanwhile), atomically."""
    path = cache_dir() / f"{name}.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        merged = {**read(name, stamp), **entries}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.")
        with os.fdopen(fd, "w") as f:
            json.dump({"stamp": stamp, "entries": merged}, f, sort_keys=True)
        os.replace(tmp, path)  # a reader sees the old file or the new one, never half of one
    except OSError:
        pass
