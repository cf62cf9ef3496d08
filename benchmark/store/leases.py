"""A run's lease as the store keeps it (``lease.json``): who holds it, until when, at which
generation, and whether it still holds. Predicates only: the worker's side of a lease (claim,
heartbeat, release) is runs/lease.py. Imports nothing of the package, so the store's layout and
every reader of run states ask it."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path


def _process_start(pid: int) -> str | None:
    """The process's start time (Linux), so that a reused pid is not mistaken for a live worker."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def worker_identity() -> dict:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "start": _process_start(pid)}


def _number(value, default: float = 0.0) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def lease_is_live(lease: dict | None, now: float | None = None) -> bool:
    """Whether a lease still holds: not expired and, on this host, its process alive. A lease
    file of the wrong shape (a list, a string expiry) holds nothing."""
    if not isinstance(lease, dict) or not isinstance(lease.get("owner"), dict):
        return False
    if (now or time.time()) > _number(lease.get("expires")):
        return False
    owner = lease["owner"]
    if owner.get("host") == socket.gethostname():
        pid = owner.get("pid")
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, TypeError):
            return False
        except PermissionError:
            pass
        if owner.get("start") is not None and _process_start(pid) != owner.get("start"):
            return False
    return True


def lease_owner_name(lease: dict | None) -> str:
    owner = (lease or {}).get("owner") if isinstance(lease, dict) else None
    if not isinstance(owner, dict):
        return "nobody"
    return str(owner.get("name") or f"{owner.get('host')}:{owner.get('pid')}")


def lease_wait_note(lease: dict | None, now: float | None = None) -> str | None:
    """Why a live lease of another host is waited for, and until when (None for this host's)."""
    if not lease_is_live(lease, now) or lease["owner"].get("host") == socket.gethostname():
        return None
    left = _number(lease.get("expires")) - (now or time.time())
    return (f"leased by {lease_owner_name(lease)} (another host: its process cannot be checked from here); "
            f"taken over if not renewed within {left:.0f} s")


def lease_generation(lease) -> int:
    return int(_number(lease.get("generation"))) if isinstance(lease, dict) else 0
