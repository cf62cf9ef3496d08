"""The store: one folder per run id, the source of truth for what is done. ``Store`` owns this
layout: every path under a store comes from its constants and methods, never from a literal
elsewhere.

```
<store>/store.json                     LAYOUT_FILE: the store's layout and run-id scheme (written with the first run)
<store>/runs/<id>/config.json          CONFIG: the resolved config (written before training starts)
                  metrics.jsonl        METRICS: pre-training stage lines, then one line per epoch
                  checkpoint.pt        CHECKPOINT: the last epoch's full training state
                  checkpoint.prev.pt   PREVIOUS_CHECKPOINT: the one before (the fall-back)
                  model.pt             MODEL: final weights (what a student's teacher loads)
                  test_logits.pt       TEST_LOGITS: the final model's test logits and labels
                  lease.json           LEASE: which worker trains it, until when, which generation
                  .claim.lock          LOCK: held for every write into the run, fenced or not
                  events.jsonl         EVENTS: claims, expiries, failures (runs/events.py)
                  attempts.json        ATTEMPTS: failed attempts so far (runs/retry.py: the retry budget)
                  result.json          RESULT, written last: a run is finished exactly when it exists
<store>/derived/<id>/                  derived_dir(id): files computed from a finished run later (analyses), beside
                                       its immutable folder
<store>/archive/<id>/<UTC time>/       archive_dir(id, time): a whole run folder as it was before
                                       ``reproduce --rerun-stale`` reset the run (benchmark/runs/stale.py)
<store>/archive/migrated/<id>/         migrated_aside_dir(id): a run that ``store migrate`` set aside (another
                                       run of the same config was kept under the new id)
<store>/migration.json                 migration_journal: ``store migrate --apply`` in progress (resumable)
<store>/queue/sessions.json            sessions_file: which tables ran at which profile, when
             /worker-<i>.log           worker_log(i): a local worker's output
             /<digest>.txt             job_list_file(text): the run ids a worker is limited to
<store>/plans/<table>/<profile>.json   plan_file(table, profile): the plan reproduce ran (stored_plan.py)
<store>/submitit/                      submitit_dir: SLURM jobs' logs (submitit's own layout)
<store>/tensorboard/                   tensorboard_dir: event files (``--tensorboard``)
<store>/reports/                       reports_dir: ``report``'s default output
<store>/throughput.json                throughput_file: measured engine throughput per device kind
<store>/nightly-store.json             nightly_mark: which code fingerprint a nightly store holds
<store>/canary/                        canary_dir: a nightly store's golden canary runs (a store of its own)
```
**Layout.** ``store.json`` records the layout (LAYOUT) and the run-id scheme (benchmark/schema.py
``ID_SCHEME``) of the store. A store of an older layout or scheme (layout 1 had no ``store.json``)
is refused until ``runner.py store migrate --apply`` carries it over; a newer one is refused
(upgrade the code). Both are one line and exit 2, before anything is read or written.

Every file is written atomically (temporary file, fsync, rename), so a kill at any moment
leaves either the old file or the new one, never half of one.

**Fencing.** The run's files (``config.json``, ``metrics.jsonl``, the checkpoints, ``model.pt``,
``test_logits.pt``, ``attempts.json``, ``result.json``) are written only through
``Store.write_run_file`` (``ensure_config``, ``write_result``, ``rewrite_metrics``) and
``Store.append_metrics``, which rename the finished temporary file into place (or append) only
while holding the run's lock file and only if

- the run is not finished (a readable ``result.json``: finished runs are immutable), and
- the writer holds the run's current lease, same owner and same ``generation`` (a counter that
  every claim increments), or, for a writer without a lease (the Python API), nobody else
  holds a live one.

A worker that was paused past its lease (SIGSTOP, a stalled VM) and resumes after another took
the run over is refused at its next write (``WriteRefused``), whatever it was doing.

**Unfenced writes.** Two files cannot be fenced, and are written through
``Store.write_unfenced`` (under the run's lock and atomic, without the two checks above):

- ``lease.json``, because it is what the fence checks: a claim, renewal or release is a
  compare-and-set against the lease read under the same lock;
- ``events.jsonl``, because some of its lines are written exactly when the writer may no longer
  write the run: ``lost`` after the lease passed to another worker, ``finish`` and ``fail``
  after ``result.json`` exists. They record what happened and never change the run's state.

``store check --repair`` alone may re-derive files of a finished run (``repair=True``), and
``reproduce --retry-failed`` alone removes a failed run's ``result.json`` and ``attempts.json``,
holding the run's lock (``run_lock``).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from filelock import FileLock, Timeout

from ..errors import BadInput
from ..schema import ID_SCHEME
from ..spec import is_run_id
from .leases import lease_is_live, lease_owner_name

LOCK, LEASE, RESULT = ".claim.lock", "lease.json", "result.json"
CONFIG, METRICS, MODEL, TEST_LOGITS = "config.json", "metrics.jsonl", "model.pt", "test_logits.pt"
CHECKPOINT, PREVIOUS_CHECKPOINT = "checkpoint.pt", "checkpoint.prev.pt"
EVENTS, ATTEMPTS = "events.jsonl", "attempts.json"
LAYOUT = 2  # 1: no store.json (run ids of scheme 1); 2: store.json, derived/, archive/, plans/
LAYOUT_FILE = "store.json"
# a table id or profile naming a stored plan's file: a plain name, never a path ("../x", "a/b")
PLAN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
RUN_FILES = frozenset({LOCK, LEASE, RESULT, CONFIG, METRICS, MODEL, TEST_LOGITS, CHECKPOINT, PREVIOUS_CHECKPOINT,
                       EVENTS, ATTEMPTS})
UNFENCED = frozenset({LEASE, EVENTS})  # written by Store.write_unfenced (the module's docstring says why)


class WriteRefused(Exception):
    """A write into a run that this writer may no longer make (the run finished, or its lease
    passed to another worker). The writer drops the run; nothing it had was written."""


def write_temp(path: Path, data: bytes) -> Path:
    """``data`` in a fsynced temporary file next to ``path`` (renamed into place by the caller)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = write_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode()


def jsonl_bytes(lines: list[dict]) -> bytes:
    """metrics.jsonl's form: one sorted-key JSON object a line."""
    return "".join(json.dumps(m, sort_keys=True) + "\n" for m in lines).encode()


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json_bytes(obj))


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


def parse_metrics(text: str) -> tuple[list, bool]:
    """(the parsed lines of a metrics.jsonl text, whether its last line was torn and left out).
    Only the last line can be torn (a kill in the middle of an append); a line before it that
    does not parse is damage: ValueError."""
    lines = [line for line in text.splitlines() if line.strip()]
    out = []
    for k, line in enumerate(lines):
        try:
            out.append(json.loads(line))
        except ValueError:
            if k < len(lines) - 1:
                raise
            return out, True
    return out, False


def read_json(path: Path) -> Any | None:
    """The parsed file, or None when it is missing or unreadable (a corrupt file is not fatal)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def reported_metrics(result: dict, config: dict) -> dict:
    """A finished run's test metrics at the epoch it reports: its config's ``recipe.report_epoch``
    (a run shared by two tables may be reported at different epochs, as report_epoch is not part
    of the run id: the planned config decides), else the one its result records."""
    m = result["metrics"]
    return m[config.get("recipe", {}).get("report_epoch", m["reported_epoch"])]


class Store:
    def __init__(self, root: str | os.PathLike = "runs", check_layout: bool = True):
        """``check_layout``: refuse (BadInput) a store of another layout or id scheme; only
        ``store migrate`` opens one without."""
        self.root = Path(root)
        # run id -> {"owner", "generation"} of the lease this process holds (queue.Lease sets it)
        self.fences: dict[str, dict] = {}
        if check_layout:
            self.check_layout()

    # -- layout

    @property
    def layout_file(self) -> Path:
        return self.root / LAYOUT_FILE

    def layout(self) -> tuple[int, int] | None:
        """(layout, id scheme) of the store; (1, 1) for a store of runs without a layout record,
        None for a new or empty one. BadInput when the record is unreadable."""
        if self.layout_file.exists():
            record = read_json(self.layout_file)
            if not (isinstance(record, dict) and isinstance(record.get("layout"), int)
                    and isinstance(record.get("id_scheme"), int)):
                raise BadInput(self.layout_file, "layout", "not a store layout record "
                               "({\"layout\": N, \"id_scheme\": N}); restore it from a backup")
            return record["layout"], record["id_scheme"]
        # A run folder with a config is a store of layout 1 (ensure_config records the layout before
        # a run's first config): a folder holding only the lock of a run being claimed is not.
        if any((self.runs_dir / rid / CONFIG).exists() for rid in self.run_ids()):
            return 1, 1
        return None

    def check_layout(self) -> None:
        found = self.layout()
        if found is None or found == (LAYOUT, ID_SCHEME):
            return
        layout, scheme = found
        if layout > LAYOUT or scheme > ID_SCHEME:
            raise BadInput(self.root, "layout", f"this store has layout {layout}, id scheme {scheme}: newer than "
                           f"this code's ({LAYOUT}, {ID_SCHEME}); upgrade kd-repro to read it")
        raise BadInput(self.root, "layout", f"this store has layout {layout}, id scheme {scheme} (this code: "
                       f"{LAYOUT}, {ID_SCHEME}); `python runner.py store migrate --store {self.root}` lists what "
                       "moves, `--apply` carries it over without retraining")

    def mark_layout(self) -> None:
        """Record this code's layout in a store that has none yet (its first run)."""
        if not self.layout_file.exists():
            atomic_write_json(self.layout_file, {"layout": LAYOUT, "id_scheme": ID_SCHEME})

    def derived_dir(self, run_id: str) -> Path:
        """Files computed from a finished run after it finished (e.g. training-set logits for an
        analysis): outside the run's immutable folder, named by its id."""
        if not is_run_id(run_id):
            raise ValueError(f"not a run id: {run_id!r}")
        return self.root / "derived" / run_id

    def migrated_aside_dir(self, run_id: str) -> Path:
        if not is_run_id(run_id):
            raise ValueError(f"not a run id: {run_id!r}")
        return self.root / "archive" / "migrated" / run_id

    @property
    def migration_journal(self) -> Path:
        return self.root / "migration.json"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def run_dir(self, run_id: str) -> Path:
        # Ids become paths: accept only our own hex ids, never something like "../x".
        if not is_run_id(run_id):
            raise ValueError(f"not a run id: {run_id!r}")
        return self.runs_dir / run_id

    def run_file(self, run_id: str, name: str) -> Path:
        """``<store>/runs/<id>/<name>`` for one of the run files named in RUN_FILES."""
        if name not in RUN_FILES:
            raise ValueError(f"not a run file: {name!r}")
        return self.run_dir(run_id) / name

    def archive_dir(self, run_id: str, stamp: str) -> Path:
        """``<store>/archive/<id>/<stamp>/``: a copy of a run folder made before it was reset
        (``stamp``: the UTC time, as stale.utc_stamp writes it)."""
        if not is_run_id(run_id) or not stamp or "/" in stamp or stamp.startswith("."):
            raise ValueError(f"not an archive of a run: {run_id!r}, {stamp!r}")
        return self.root / "archive" / run_id / stamp

    @property
    def queue_dir(self) -> Path:
        return self.root / "queue"

    @property
    def sessions_file(self) -> Path:
        return self.queue_dir / "sessions.json"

    def worker_log(self, index: int) -> Path:
        return self.queue_dir / f"worker-{int(index)}.log"

    def job_list_file(self, text: str) -> Path:
        """Where a list of run ids (``text``) is kept for ``worker --only @file``: named by its hash."""
        import hashlib

        return self.queue_dir / f"{hashlib.sha256(text.encode()).hexdigest()[:16]}.txt"

    @property
    def plans_dir(self) -> Path:
        return self.root / "plans"

    def plan_file(self, table: str, profile: str) -> Path:
        """``<store>/plans/<table>/<profile>.json``: the plan ``reproduce`` ran (stored_plan.py)."""
        for name in (table, profile):
            if not isinstance(name, str) or not PLAN_NAME.match(name):
                raise ValueError(f"not a plain name: {name!r}")
        return self.plans_dir / table / f"{profile}.json"

    @property
    def submitit_dir(self) -> Path:
        return self.root / "submitit"

    @property
    def tensorboard_dir(self) -> Path:
        return self.root / "tensorboard"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def throughput_file(self) -> Path:
        return self.root / "throughput.json"

    @property
    def nightly_mark(self) -> Path:
        return self.root / "nightly-store.json"

    @property
    def canary_dir(self) -> Path:
        return self.root / "canary"

    def config(self, run_id: str) -> dict | None:
        return read_json(self.run_file(run_id, CONFIG))

    def result(self, run_id: str) -> dict | None:
        """The finished run's result, or None if it has not finished (or its file is corrupt)."""
        res = read_json(self.run_file(run_id, RESULT))
        if not isinstance(res, dict) or res.get("id") != run_id:
            return None
        if res.get("status") == "done" and not isinstance(res.get("metrics"), dict):
            return None  # damaged: the run resumes from its checkpoint and writes a whole one
        return res

    def is_done(self, run_id: str) -> bool:
        res = self.result(run_id)
        return res is not None and res.get("status") == "done"

    def ensure_config(self, run_id: str, cfg: dict) -> None:
        # Python's json writes tau=inf as Infinity and reads it back: the file round-trips.
        path = self.run_file(run_id, CONFIG)
        if read_json(path) != cfg:
            self.mark_layout()
            self.write_run_file(run_id, CONFIG, json_bytes(cfg))

    def write_result(self, run_id: str, result: dict) -> None:
        self.write_run_file(run_id, RESULT, json_bytes(result))

    def write_run_file(self, run_id: str, name: str, data: bytes, keep_previous: str | None = None,
                       repair: bool = False) -> None:
        """Write ``<run>/<name>`` atomically, fenced (see the module's docstring). The data is
        written and fsynced first; the lock is held only for the check and the rename(s).
        ``keep_previous``: first rename the current file to this name (the checkpoint's
        fall-back). ``repair``: ``store check --repair`` re-deriving a file of a finished run."""
        run_dir = self.run_dir(run_id)
        tmp = write_temp(run_dir / name, data)
        try:
            with self._fenced(run_id, name, repair):
                if keep_previous and (run_dir / name).exists():
                    os.replace(run_dir / name, run_dir / keep_previous)
                os.replace(tmp, run_dir / name)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(run_dir)

    def write_unfenced(self, run_id: str, name: str, update: Callable[[bytes | None], bytes | None],
                       timeout: float = 60) -> bool:
        """Rewrite ``<run>/<name>`` atomically under the run's lock, WITHOUT the fence's checks
        (finished run, current lease). Only for the two files in UNFENCED, for the reasons in
        the module's docstring: ``lease.json`` (the lease's own compare-and-set) and
        ``events.jsonl`` (a run's history, written also after its lease is lost or its result
        exists); any other name is a ValueError. Everything else goes through ``write_run_file``.

        ``update`` is called holding the lock with the file's current bytes (None if it does not
        exist) and returns the new bytes, or None to leave the file as it is. Returns whether it
        wrote. ``filelock.Timeout`` (a TimeoutError) when the lock is not had within ``timeout``."""
        if name not in UNFENCED:
            raise ValueError(f"{name} is fenced: write it with write_run_file")
        path = self.run_file(run_id, name)
        with self.run_lock(run_id, timeout):
            try:
                current = path.read_bytes()
            except FileNotFoundError:
                current = None
            data = update(current)
            if data is None:
                return False
            atomic_write_bytes(path, data)
        return True

    @contextmanager
    def run_lock(self, run_id: str, timeout: float = 60) -> Iterator[None]:
        """Hold the run's lock file (``filelock.Timeout`` after ``timeout`` seconds). Every write
        into the run holds it, for milliseconds: the check and the rename."""
        self.run_dir(run_id).mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.run_file(run_id, LOCK)), timeout=timeout):
            yield

    @contextmanager
    def _fenced(self, run_id: str, name: str, repair: bool = False):
        """Hold the run's lock and check that this process may write ``name`` (WriteRefused if not)."""
        try:
            with self.run_lock(run_id):
                self.check_may_write(run_id, name, repair=repair)
                yield
        except Timeout:
            raise WriteRefused(f"run {run_id}: its lock is held by another process") from None

    def check_may_write(self, run_id: str, name: str, repair: bool = False) -> None:
        """Raise WriteRefused unless this process may write ``name`` into the run now (call it
        holding the run's lock)."""
        if self.result(run_id) is not None and not repair:
            raise WriteRefused(f"run {run_id} is finished; its files are immutable (refused {name})")
        lease = read_json(self.run_file(run_id, LEASE))
        lease = lease if isinstance(lease, dict) else None
        held = self.fences.get(run_id)
        if held is not None:
            if lease is None or lease.get("owner") != held["owner"] or lease.get("generation") != held["generation"]:
                now = f"generation {lease.get('generation')}" if lease else "no lease"
                raise WriteRefused(f"run {run_id}: lease generation {held['generation']} was lost ({now} now); "
                                   f"refused {name}")
        elif lease_is_live(lease) and not repair:
            raise WriteRefused(f"run {run_id} is leased by {lease_owner_name(lease)}; refused {name}")

    def append_metrics(self, run_id: str, epoch_metrics: list[dict]) -> None:
        """Append these lines to metrics.jsonl (one per epoch), fenced as ``write_run_file`` is:
        under the run's lock, only while this writer may write, fsynced before the lock is let go.
        A kill mid-append leaves a torn last line, which ``metrics`` ignores and the resumed run's
        ``rewrite_metrics`` replaces."""
        path = self.run_file(run_id, METRICS)
        created = not path.exists()
        with self._fenced(run_id, METRICS), open(path, "ab") as f:
            f.write(jsonl_bytes(epoch_metrics))
            f.flush()
            os.fsync(f.fileno())
        if created:
            _fsync_dir(path.parent)

    def rewrite_metrics(self, run_id: str, epoch_metrics: list[dict], repair: bool = False) -> None:
        """Replace metrics.jsonl by these lines, atomically: a resumed run writes back the history
        it restored from its checkpoint, so no epoch is listed twice and a torn line is gone
        (``repair``: ``store check --repair`` re-deriving it from the checkpoint)."""
        self.write_run_file(run_id, METRICS, jsonl_bytes(epoch_metrics), repair=repair)

    def metrics(self, run_id: str) -> list[dict]:
        """The lines of metrics.jsonl; a torn last line (a kill mid-append) is left out."""
        path = self.run_file(run_id, METRICS)
        return parse_metrics(path.read_text())[0] if path.exists() else []

    def run_ids(self) -> Iterator[str]:
        if self.runs_dir.is_dir():
            for p in sorted(self.runs_dir.iterdir()):
                if is_run_id(p.name):
                    yield p.name
