"""The store's session notes (``Store.sessions_file``): which tables each ``reproduce`` asked
for, at which profile, when. ``reproduce`` writes them; ``status``, ``report``, the results
frames and the site read them to plan a table under the profile it was last run with.

The notes only remember; nothing is lost without them (a damaged file reads as no sessions, and
a table never reproduced is planned at paper). Imports nothing heavy: ``status`` asks it.
"""

from __future__ import annotations

import time

from ..catalog.profiles import PROFILES
from ..store.layout import Store, atomic_write_json, read_json

KEEP = 50  # sessions remembered; older ones say nothing a newer one does not


def record_session(store: Store, tables: list[str], profile: str, plans: bool = False) -> None:
    """Note that ``tables`` were reproduced at ``profile``; ``plans``: their plans were stored
    (stored_plan.py), so a missing one is damage, not an old store. (Sessions of older code also
    name their job list, under "jobs": nothing reads it.)"""
    sessions = read_json(store.sessions_file)
    sessions = sessions if isinstance(sessions, list) else []
    sessions.append({"time": time.time(), "tables": tables, "profile": profile,
                     **({"plans": True} if plans else {})})
    atomic_write_json(store.sessions_file, sessions[-KEEP:])


def read_sessions(store: Store) -> list[dict]:
    """The recorded sessions, oldest first (a damaged note is no note)."""
    found = read_json(store.sessions_file)
    return [s for s in found if isinstance(s, dict)] if isinstance(found, list) else []


def last_profiles(store: Store) -> dict[str, str]:
    """table -> the profile it was last reproduced with in this store (sessions naming an unknown
    profile are skipped)."""
    last: dict[str, str] = {}
    for session in read_sessions(store):
        tables = session.get("tables")
        if session.get("profile") in PROFILES and isinstance(tables, list):
            last.update((table, session["profile"]) for table in tables if isinstance(table, str))
    return last


def last_profile(store: Store, table: str) -> str:
    """The profile ``table`` was last reproduced with in this store, else paper."""
    return last_profiles(store).get(table, "paper")
