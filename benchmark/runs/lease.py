"""This worker's lease on one run: claimed under the run's lock with a higher generation, renewed
by a heartbeat thread, released expired (so the next claim's generation is higher). Whether a
lease holds is the store's (store/leases.py)."""

from __future__ import annotations

import json
import threading
import time

from filelock import Timeout

from ..store.layout import LEASE, Store, json_bytes, read_json
from ..store.leases import lease_generation, lease_is_live, worker_identity
from .options import WorkerOptions


class Lease:
    """This worker's lease on one run, renewed by a heartbeat thread until released."""

    def __init__(self, store: Store, rid: str, opts: WorkerOptions):
        self.store, self.rid, self.opts = store, rid, opts
        self.dir = store.run_dir(rid)
        self.lease_file = store.run_file(rid, LEASE)
        self.me = {**worker_identity(), "name": opts.name}
        self.lost = threading.Event()
        self.progress: dict = {}
        self.generation = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _swap(self, update) -> bool:
        """The lease's compare-and-set: ``update(current lease)`` returns the new lease, or None
        to leave it, under the run's lock (``Store.write_unfenced``: the lease is what the fence
        checks). The lock is held by a writer only to check its lease and rename a file. A worker
        paused at that moment keeps it until it resumes: the claim gives up after a few seconds
        and the run is tried again later (a delay, never a double writer)."""
        def swap(current: bytes | None) -> bytes | None:
            try:
                lease = json.loads(current) if current else None
            except ValueError:  # a damaged lease file holds nothing
                lease = None
            new = update(lease)
            return None if new is None else json_bytes(new)
        return self.store.write_unfenced(self.rid, LEASE, swap, timeout=5)

    def _held(self) -> dict:
        return {"owner": self.me, "expires": time.time() + self.opts.lease_seconds, "generation": self.generation,
                "progress": self.progress, "device": self.opts.device}

    def claim(self) -> bool:
        def take(current):
            if self.store.result(self.rid) is not None or lease_is_live(current):
                return None
            self.generation = lease_generation(current) + 1
            return self._held()
        try:
            if not self._swap(take):
                return False
        except Timeout:
            return False
        self.store.fences[self.rid] = {"owner": self.me, "generation": self.generation}
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._thread.start()
        return True

    def mine(self) -> bool:
        return self._is_mine(read_json(self.lease_file))

    def _is_mine(self, lease) -> bool:
        return isinstance(lease, dict) and lease.get("owner") == self.me and lease.get("generation") == self.generation

    def _beat(self) -> None:
        while not self._stop.wait(self.opts.heartbeat_seconds):
            self.renew()

    def renew(self) -> None:
        def extend(current):
            if not self._is_mine(current):
                self.lost.set()
                return None
            return self._held()
        try:
            self._swap(extend)
        except OSError:  # filelock's Timeout included
            pass  # try again at the next beat; the lease lasts several beats

    def release(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        if self.store.fences.get(self.rid, {}).get("generation") == self.generation:
            del self.store.fences[self.rid]
        # Kept, expired, so that the next claim's generation is higher than ours.
        released = {"generation": self.generation, "expires": 0, "released_by": self.me}
        try:
            self._swap(lambda current: released if self._is_mine(current) else None)
        except OSError:  # filelock's Timeout included
            pass
