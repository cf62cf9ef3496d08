"""The store: one folder per run id, the source of truth for what is done.

```
<store>/runs/<id>/config.json      the resolved config (written before training starts)
                  metrics.jsonl    one line per finished epoch
                  checkpoint.pt    the last epoch's full training state (and checkpoint.prev.pt)
                  model.pt         final weights (what a student's teacher loads)
                  result.json      written last: a run is finished exactly when this exists
```
Every file is written atomically (temporary file, fsync, rename), so a kill at any moment
leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from .config import is_run_id


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_json(path: Path) -> Any | None:
    """The parsed file, or None when it is missing or unreadable (a corrupt file is not fatal)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


class Store:
    def __init__(self, root: str | os.PathLike = "runs"):
        self.root = Path(root)

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def run_dir(self, run_id: str) -> Path:
        # Ids become paths: accept only our own hex ids, never something like "../x".
        if not is_run_id(run_id):
            raise ValueError(f"not a run id: {run_id!r}")
        return self.runs_dir / run_id

    def config(self, run_id: str) -> dict | None:
        return read_json(self.run_dir(run_id) / "config.json")

    def result(self, run_id: str) -> dict | None:
        """The finished run's result, or None if it has not finished (or its file is corrupt)."""
        res = read_json(self.run_dir(run_id) / "result.json")
        return res if isinstance(res, dict) and res.get("id") == run_id else None

    def is_done(self, run_id: str) -> bool:
        res = self.result(run_id)
        return res is not None and res.get("status") == "done"

    def ensure_config(self, run_id: str, cfg: dict) -> None:
        # Python's json writes tau=inf as Infinity and reads it back: the file round-trips.
        path = self.run_dir(run_id) / "config.json"
        if read_json(path) != cfg:
            atomic_write_json(path, cfg)

    def write_result(self, run_id: str, result: dict) -> None:
        atomic_write_json(self.run_dir(run_id) / "result.json", result)

    def append_metrics(self, run_id: str, epoch_metrics: list[dict]) -> None:
        """Rewrite metrics.jsonl with the epochs so far (atomically: a resumed run rewrites the
        history it restored from its checkpoint, so no epoch is ever listed twice)."""
        text = "".join(json.dumps(m, sort_keys=True) + "\n" for m in epoch_metrics)
        atomic_write_bytes(self.run_dir(run_id) / "metrics.jsonl", text.encode())

    def metrics(self, run_id: str) -> list[dict]:
        path = self.run_dir(run_id) / "metrics.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def run_ids(self) -> Iterator[str]:
        if self.runs_dir.is_dir():
            for p in sorted(self.runs_dir.iterdir()):
                if is_run_id(p.name):
                    yield p.name
