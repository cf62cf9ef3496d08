"""The reproduce sessions noted in a store (benchmark/runs/sessions.py). Fast: nothing is trained."""


from benchmark.runs.sessions import last_profile, read_sessions, record_session
from benchmark.store.layout import Store, atomic_write_json


def test_last_profile_is_the_newest_session_naming_the_table_with_a_known_profile(tmp_path):
    store = Store(tmp_path)
    assert last_profile(store, "t1") == "paper"  # no notes: paper
    record_session(store, ["t1", "t2"], "quick")
    record_session(store, ["t2"], "smoke")
    assert [last_profile(store, t) for t in ("t1", "t2", "t3")] == ["quick", "smoke", "paper"]

    notes = read_sessions(store)
    atomic_write_json(store.sessions_file, notes + ["garbage", {"tables": ["t1"], "profile": "bogus"},
                                                    {"tables": "t1", "profile": "smoke"}, {"tables": [["t1"]]}])
    assert last_profile(store, "t1") == "quick"  # damaged notes after it say nothing
    atomic_write_json(store.sessions_file, {"not": "a list"})
    assert last_profile(store, "t2") == "paper"
    record_session(store, ["t1"], "smoke")  # a damaged file is started afresh
    assert [s["profile"] for s in read_sessions(store)] == ["smoke"]


def test_the_session_notes_keep_the_newest_fifty(tmp_path):
    store = Store(tmp_path)
    for i in range(55):
        record_session(store, [f"t{i}"], "smoke")
    notes = read_sessions(store)
    assert len(notes) == 50 and notes[0]["tables"] == ["t5"] and notes[-1]["tables"] == ["t54"]
