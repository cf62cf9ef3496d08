"""What a lease file says (benchmark/store/leases.py): live or not, whose, for how long a foreign one is
waited for, its generation; a file of the wrong shape holds nothing."""

import os
import socket
import subprocess
import sys

from benchmark.store.leases import lease_generation, lease_is_live, lease_owner_name, lease_wait_note, worker_identity

NOW = 1000.0


def test_a_lease_of_this_process_is_live_until_it_expires():
    me = worker_identity()
    assert me["host"] == socket.gethostname() and me["pid"] == os.getpid() and me["start"] is not None
    lease = {"owner": me, "expires": NOW + 10, "generation": 3}
    assert lease_is_live(lease, now=NOW) and not lease_is_live(lease, now=NOW + 11)
    assert lease_generation(lease) == 3 and lease_wait_note(lease, now=NOW) is None  # this host: no note


def test_a_dead_process_or_a_reused_pid_holds_nothing():
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    owner = {"host": socket.gethostname(), "pid": int(dead.stdout)}
    assert not lease_is_live({"owner": owner, "expires": NOW + 10}, now=NOW)
    reused = {**worker_identity(), "start": "0"}  # this pid, but a process started at another time
    assert not lease_is_live({"owner": reused, "expires": NOW + 10}, now=NOW)


def test_a_foreign_hosts_lease_is_trusted_until_it_expires_and_named():
    lease = {"owner": {"host": "elsewhere", "pid": 1, "name": "gpu-7:1"}, "expires": NOW + 90}
    assert lease_is_live(lease, now=NOW)
    assert lease_wait_note(lease, now=NOW) == ("leased by gpu-7:1 (another host: its process cannot be checked "
                                               "from here); taken over if not renewed within 90 s")
    assert lease_owner_name({"owner": {"host": "h", "pid": 5}}) == "h:5"


def test_files_of_the_wrong_shape_hold_nothing():
    for odd in (None, [], "x", {"owner": "me", "expires": NOW + 9}, {"owner": {"host": "h"}, "expires": "tomorrow"},
                {"owner": {"host": "h"}, "expires": True}):
        assert not lease_is_live(odd, now=NOW)
    assert lease_owner_name(["x"]) == "nobody" and lease_owner_name(None) == "nobody"
    assert lease_generation(None) == 0 and lease_generation({"generation": "7"}) == 0
