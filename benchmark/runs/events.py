"""A run's ``events.jsonl``: every claim, finish, failure, loss of lease and interruption, one JSON
line each, appended unfenced; how the tests prove that no run was trained twice at once."""

from __future__ import annotations

import json
import time

from ..store.layout import EVENTS, Store


def append_event(store: Store, rid: str, **event) -> None:
    """One line more in the run's events.jsonl, unfenced (``Store.write_unfenced``): a ``lost``
    event is written after the lease is gone and a ``finish`` after the result exists."""
    line = (json.dumps({"time": time.time(), **event}, sort_keys=True) + "\n").encode()
    store.write_unfenced(rid, EVENTS, lambda current: _whole_lines(current) + line)


def _whole_lines(data: bytes | None) -> bytes:
    # An events.jsonl appended to by an older version may end in a line cut by a kill: end it,
    # so that the cut line stays one unreadable line (events() skips it) and ours stays whole.
    return b"" if not data else data if data.endswith(b"\n") else data + b"\n"


def events(store: Store, rid: str) -> list[dict]:
    path = store.run_file(rid, EVENTS)
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass  # a line cut by a kill
    return out
