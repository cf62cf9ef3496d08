"""What a planner has already resolved: each distinct raw run config is resolved and hashed once.

A table asks for the same run many times (one teacher for each of its students, one recipe for
every cell), and resolving a config (engine/config.resolve) and hashing it (spec.run_id) were most
of planning's time. Both depend on the raw config alone (a file name only enters an error
message, and an error is never remembered), so the planner remembers, per raw config, the run id
it resolved to, and per recipe that it passed the check. Only ids (strings) are kept, never a
config: a caller that changes a config it got cannot change what a later lookup returns.

The key is ``repr`` of the raw config: exact for what manifests and profiles put in one (mappings
in their order, lists, strings, ints, floats, bools, None: ``1``, ``1.0`` and ``True`` differ, so
do ``0.0`` and ``-0.0``), where JSON would merge a tuple with a list and drop key order.
"""

from __future__ import annotations


def key(raw) -> str:
    return repr(raw)


class ResolveMemo:
    """Raw config -> run id, and the recipes that passed the planner's check; one per Planner."""

    def __init__(self) -> None:
        self._ids: dict[str, str] = {}
        self._checked: set[str] = set()
        self._teachers: dict[str, tuple[dict, str | None]] = {}

    def run_id(self, raw_key: str) -> str | None:
        """The id the raw config of this key resolved to before, or None. The caller takes the
        key before resolving: resolve may coerce values of the raw config in place (ints to floats)."""
        return self._ids.get(raw_key)

    def remember(self, raw_key: str, rid: str) -> None:
        self._ids[raw_key] = rid

    def recipe_checked(self, recipe_key: str) -> bool:
        return recipe_key in self._checked

    def recipe_passed(self, recipe_key: str) -> None:
        self._checked.add(recipe_key)

    def teacher(self, teacher_key: str) -> tuple[dict, str | None] | None:
        """(config's teacher field, teacher job id) found before for this key, or None; the
        caller copies the field (a dict of strings) before handing it out."""
        return self._teachers.get(teacher_key)

    def remember_teacher(self, teacher_key: str, ref: dict, teacher_id: str | None) -> None:
        self._teachers[teacher_key] = (dict(ref), teacher_id)
