"""``store migrate``: carry a store of an older layout and run-id scheme over, without retraining.

Every run folder's stored config is resolved as today's code resolves it (the fields an older
scheme left implicit filled in from ``schema.MIGRATION_DEFAULTS``), teachers first, so that a
student's ``teacher: {run: ID}`` names its teacher's new id; the run's new id is that config's.
Finished runs keep their files: only ``config.json`` and ``result.json`` (its id and config) are
rewritten and the folder is renamed; stored plans have their ids replaced. When two old runs become one new id (the same training under
two ids of an older rule), one is kept (finished before failed before unfinished, then the one
with more epochs, then the smaller old id) and the other is set aside under
``archive/migrated/<old id>/``, never deleted; so is a run whose config no longer resolves.

The dry run (the default) writes nothing. ``--apply`` writes a journal (``migration.json``) with
the whole mapping first, so a migration killed half-way continues where it stopped when run again;
the store's layout record is written last. Workers must be stopped: a live lease refuses it.
"""

from __future__ import annotations

import copy
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..engine import config as C
from ..errors import BadInput, Failed
from ..schema import ID_SCHEME, MIGRATION_DEFAULTS, get_path
from ..spec import is_run_id
from ..store.layout import CONFIG, LAYOUT, LEASE, RESULT, Store, atomic_write_json, read_json
from ..store.leases import lease_is_live
from .stale import StaleRuns


@dataclass
class Migration:
    layout: tuple[int, int]                              # (layout, id scheme) found
    mapping: dict[str, str] = field(default_factory=dict)  # old id -> new id (kept and set aside)
    configs: dict[str, dict] = field(default_factory=dict)  # old id -> today's resolved config
    kept: dict[str, str] = field(default_factory=dict)      # new id -> the old id kept for it
    aside: list[str] = field(default_factory=list)          # old ids set aside (a collision's others)
    problems: dict[str, str] = field(default_factory=dict)  # old id -> why it cannot move

    def lines(self, store: Store) -> list[str]:
        found = f"layout {self.layout[0]}, id scheme {self.layout[1]}"
        moved = sum(old != new for old, new in self.mapping.items() if old not in self.aside)
        done = sum(store.is_done(old) for old in self.kept.values())
        stale = StaleRuns(store).among(self.kept.values())
        out = [f"store {store.root}: {found} -> layout {LAYOUT}, id scheme {ID_SCHEME}",
               f"{len(self.kept)} runs ({done} finished) under new ids: {moved} move, "
               f"{len(self.kept) - moved} keep their id; nothing is retrained",
               f"{len(stale)} finished run(s) stale (trained at an older numerics revision, or taught by such a "
               f"run): after migrating, `reproduce TABLE --rerun-stale` retrains them"]
        out += [f"  stale: {rid}: {'; '.join(why)}" for rid, why in list(stale.items())[:20]]
        for old in sorted(self.aside):
            new = self.mapping[old]
            out.append(f"  {old} and {self.kept[new]} are one run now ({new}): keeps {self.kept[new]} "
                       f"({_state(store, self.kept[new])}), sets {old} ({_state(store, old)}) aside in "
                       f"{store.migrated_aside_dir(old)}")
        for old, why in sorted(self.problems.items()):
            out.append(f"  {old}: cannot move ({why}): set aside in {store.migrated_aside_dir(old)}")
        return out


def _state(store: Store, rid: str) -> str:
    res = read_json(store.run_file(rid, RESULT))
    if isinstance(res, dict) and res.get("status") in ("done", "failed"):
        return "finished" if res["status"] == "done" else "failed"
    return f"{len(store.metrics(rid))} epochs logged"


def _rank(store: Store, rid: str) -> tuple:
    """Which of several old runs of one new id is kept: the smallest rank."""
    res = read_json(store.run_file(rid, RESULT))
    status = res.get("status") if isinstance(res, dict) else None
    return ({"done": 0, "failed": 1}.get(status, 2), -len(store.metrics(rid)), rid)


def _stored_config(store: Store, rid: str) -> dict | None:
    cfg = read_json(store.run_file(rid, CONFIG))
    if not isinstance(cfg, dict):
        res = read_json(store.run_file(rid, RESULT))
        cfg = res.get("config") if isinstance(res, dict) else None
    return copy.deepcopy(cfg) if isinstance(cfg, dict) else None


def _fill_implicit(cfg: dict, scheme: int) -> dict:
    """The defaults of older schemes that a config of ``scheme`` left implicit, filled in."""
    for s in range(scheme, ID_SCHEME):
        for path, value in MIGRATION_DEFAULTS.get(s, {}).items():
            keys = path.split(".")
            if get_path(cfg, path) is None:
                node = cfg
                for key in keys[:-1]:
                    node = node.setdefault(key, {})
                node[keys[-1]] = copy.deepcopy(value)
    return cfg


def _teacher_run(cfg: dict) -> str | None:
    teacher = cfg.get("teacher")
    return teacher.get("run") if isinstance(teacher, dict) else None


def plan_migration(store: Store) -> Migration | None:
    """What ``--apply`` would do; None when the store is already at this code's layout."""
    found = store.layout()
    if found is None or found == (LAYOUT, ID_SCHEME):
        return None
    if found[0] > LAYOUT or found[1] > ID_SCHEME:
        store.check_layout()  # the one-line refusal of a newer store
    journal = read_json(store.migration_journal)
    if store.migration_journal.exists():
        return _from_journal(store, journal, found)
    mig = Migration(found)
    olds = list(store.run_ids())
    stored = {rid: _stored_config(store, rid) for rid in olds}
    order, seen = [], set()

    def visit(rid: str, path: tuple) -> None:  # teachers first
        if rid in seen or rid in path:
            return
        cfg = stored.get(rid)
        teacher = _teacher_run(cfg) if cfg else None
        if teacher in stored:
            visit(teacher, path + (rid,))
        seen.add(rid)
        order.append(rid)

    for rid in olds:
        visit(rid, ())
    for old in order:
        cfg = stored[old]
        if cfg is None:
            mig.problems[old] = f"no readable {CONFIG} or {RESULT}"
            continue
        teacher = _teacher_run(cfg)
        if teacher is not None:
            if teacher not in mig.mapping:
                why = "its teacher run cannot move" if teacher in stored else "its teacher run is not in the store"
                mig.problems[old] = f"{why} ({teacher})"
                continue
            cfg["teacher"] = {"run": mig.mapping[teacher]}
        try:
            resolved = C.resolve(_fill_implicit(cfg, found[1]), where=str(store.run_file(old, CONFIG)))
        except BadInput as err:
            mig.problems[old] = f"its config does not resolve today: {err}"
            continue
        new = C.run_id(resolved)
        mig.mapping[old], mig.configs[old] = new, resolved
    by_new: dict[str, list[str]] = {}
    for old, new in mig.mapping.items():
        by_new.setdefault(new, []).append(old)
    for new, olds_of_new in by_new.items():
        keep, *others = sorted(olds_of_new, key=lambda r: _rank(store, r))
        mig.kept[new] = keep
        mig.aside += others
    return mig


def _from_journal(store: Store, journal, found) -> Migration:
    """The migration an interrupted ``--apply`` wrote down (it continues it; nothing is re-derived
    from folders it already renamed)."""
    if not (isinstance(journal, dict) and isinstance(journal.get("mapping"), dict)
            and isinstance(journal.get("kept"), dict) and isinstance(journal.get("aside"), list)
            and all(is_run_id(k) and is_run_id(v) for k, v in journal["mapping"].items())):
        raise BadInput(store.migration_journal, None, "not a migration journal; if no migration is running, "
                       "restore the store from a backup")
    mig = Migration(tuple(journal.get("from", found)), dict(journal["mapping"]), {}, dict(journal["kept"]),
                    list(journal["aside"]), dict(journal.get("problems") or {}))
    mig.configs = {old: cfg for old, cfg in (journal.get("configs") or {}).items()}
    return mig


def apply(store: Store, mig: Migration) -> None:
    """Carry the store over as ``mig`` says (resumable: see the module's docstring)."""
    live = [rid for rid in store.run_ids() if lease_is_live(read_json(store.run_file(rid, LEASE)))]
    if live:
        raise Failed(f"{len(live)} run(s) are being trained ({', '.join(live[:3])}); stop the workers, then migrate")
    if not store.migration_journal.exists():
        atomic_write_json(store.migration_journal, {
            "from": list(mig.layout), "to": [LAYOUT, ID_SCHEME], "mapping": mig.mapping, "kept": mig.kept,
            "aside": mig.aside, "problems": mig.problems, "configs": mig.configs})
    for old in [*mig.aside, *mig.problems]:
        src = store.runs_dir / old
        if src.is_dir():
            dest = store.migrated_aside_dir(old)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dest)
    for new, old in mig.kept.items():
        src, dest = store.runs_dir / old, store.runs_dir / new
        if not src.is_dir():
            continue  # moved before an interruption
        cfg = mig.configs[old]
        atomic_write_json(src / CONFIG, cfg)
        res = read_json(src / RESULT)
        if isinstance(res, dict):
            atomic_write_json(src / RESULT, {**res, "id": new, "config": cfg})
        if old != new:
            os.replace(src, dest)
            _rename_derived(store, old, new)
    for plan in sorted(store.plans_dir.glob("*/*.json")):  # stored plans name runs by id
        doc = read_json(plan)
        if doc is not None:
            atomic_write_json(plan, _renamed(doc, mig.mapping))
    for stale in store.queue_dir.glob("*.txt"):  # job lists of old ids: reproduce writes them anew
        stale.unlink(missing_ok=True)
    atomic_write_json(store.layout_file, {"layout": LAYOUT, "id_scheme": ID_SCHEME,
                                          "migrated_from": list(mig.layout)})
    store.migration_journal.unlink()


def _renamed(doc, mapping: dict[str, str]):
    """A JSON document with every old run id in it replaced by its new id."""
    if isinstance(doc, str):
        return mapping.get(doc, doc)
    if isinstance(doc, list):
        return [_renamed(x, mapping) for x in doc]
    if isinstance(doc, dict):
        return {mapping.get(k, k): _renamed(v, mapping) for k, v in doc.items()}
    return doc


def _rename_derived(store: Store, old: str, new: str) -> None:
    """What lives outside the run folder under its id: derived files and TensorBoard exports."""
    derived = store.root / "derived" / old
    if derived.is_dir():
        os.replace(derived, store.derived_dir(new))
    for board in store.tensorboard_dir.glob(f"*/*-{old}"):
        target = board.with_name(board.name[: -len(old)] + new)
        if target.exists():
            shutil.rmtree(target)
        os.replace(board, target)


def migrate(root: str | os.PathLike, do_apply: bool = False) -> tuple[list[str], int]:
    """(the lines to print, the exit code) of ``store migrate [--apply]``."""
    store = Store(root, check_layout=False)
    if not Path(root).is_dir():
        raise BadInput("--store", None, f"no store at {root}")
    mig = plan_migration(store)
    if mig is None:
        return [f"store {store.root}: layout {LAYOUT}, id scheme {ID_SCHEME}: nothing to migrate"], 0
    lines = mig.lines(store)
    if not do_apply:
        return lines + [f"dry run: nothing written; `python runner.py store migrate --store {store.root} --apply` "
                        "carries the store over"], 0
    apply(store, mig)
    left = f"; {len(mig.problems)} run(s) could not move and were set aside (listed above)" if mig.problems else ""
    return lines + [f"migrated: the store is now layout {LAYOUT}, id scheme {ID_SCHEME}{left}"], 1 if mig.problems else 0
