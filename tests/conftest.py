"""Test-wide settings: one torch thread per test process, and a private FLOPs cache.

On a 2-core machine shared with other processes, torch's default of one thread per core made a
resnet8 step 5-25x slower than one thread (0.36-1.6 s against 0.065 s, measured under load): the
threads wait for each other. Subprocesses (the CLI and kill -9 tests) inherit the environment
variables, set here before any test module imports torch.
"""

import os

os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def _flops_cache(tmp_path_factory):
    """FLOPs counted once per test session, in a cache of its own (never the user's ~/.cache).
    Under pytest-xdist the workers share it (the folder above each worker's own temporary
    folder): planning every manifest counts 14 s of FLOPs from cold, which the second worker
    would otherwise count again. The cache's writes are atomic merges (benchmark/diskcache.py)."""
    old = os.environ.get("KD_REPRO_CACHE")
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "kd-repro-cache"
    folder.mkdir(exist_ok=True)
    os.environ["KD_REPRO_CACHE"] = str(folder)
    yield
    if old is None:
        os.environ.pop("KD_REPRO_CACHE", None)
    else:
        os.environ["KD_REPRO_CACHE"] = old


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """A test that changed the thread count leaves the next one with one thread again."""
    torch.set_num_threads(1)
    yield


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Under pytest-xdist's ``--dist loadgroup`` (the CI command), the tests that share a
    module-scoped fixture (a store trained once, a teacher) run on one worker: otherwise each
    worker that got one of them would make the fixture again. Without xdist the mark is inert.

    Tests marked ``heavy`` (the end-to-end and kill -9 tests, 15-55 s each) go first, so that the
    two workers share them out at the start instead of one finishing the suite alone with the last
    of them; otherwise the order is the files' (a stable sort)."""
    items.sort(key=lambda item: item.get_closest_marker("heavy") is None)
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        defs = info.name2fixturedefs.values() if info else ()
        if any(d.scope == "module" for fds in defs for d in fds):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
