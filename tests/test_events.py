"""A run's events (benchmark/runs/events.py): appended whole."""


from benchmark.engine import config as C
from benchmark.runs.events import events
from benchmark.store.layout import Store
from tests.helpers import tiny


def enqueue(store, raw):
    cfg = C.resolve(raw)
    rid = C.run_id(cfg)
    store.ensure_config(rid, cfg)
    return cfg, rid


def test_an_event_after_a_line_cut_by_a_kill_stays_whole(tmp_path):
    from benchmark.runs.events import append_event

    store = Store(tmp_path)
    _, rid = enqueue(store, tiny())
    (store.run_dir(rid) / "events.jsonl").write_text('{"kind": "claim", "time": 1}\n{"kind": "fin')
    append_event(store, rid, kind="claim", worker="w")
    assert [e["kind"] for e in events(store, rid)] == ["claim", "claim"]
