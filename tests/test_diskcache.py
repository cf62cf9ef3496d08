"""The on-disk cache of derived facts (benchmark/diskcache.py): one stamp per file, merged updates,
and a cache that cannot be read or written reads as empty."""

import json

from benchmark import diskcache


def test_entries_read_back_only_under_their_stamp_and_updates_merge(tmp_path, monkeypatch):
    monkeypatch.setenv("KD_REPRO_CACHE", str(tmp_path / "c"))
    assert diskcache.cache_dir() == tmp_path / "c"
    assert diskcache.read("rows", "s1") == {}  # no file yet
    diskcache.update("rows", "s1", {"a": 1})
    diskcache.update("rows", "s1", {"b": 2})  # merged with what is there
    assert diskcache.read("rows", "s1") == {"a": 1, "b": 2}
    assert diskcache.read("rows", "s2") == {}  # another stamp: an empty cache
    diskcache.update("rows", "s2", {"c": 3})  # ... and its update replaces the old stamp's entries
    assert json.loads((tmp_path / "c" / "rows.json").read_text()) == {"stamp": "s2", "entries": {"c": 3}}
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["rows.json"]  # no temporary file left


def test_a_damaged_or_unwritable_cache_reads_as_empty_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("KD_REPRO_CACHE", str(tmp_path))
    for text in ("{not json", "[1, 2]", '{"stamp": "s", "entries": [1]}'):
        (tmp_path / "x.json").write_text(text)
        assert diskcache.read("x", "s") == {}
    blocker = tmp_path / "file"
    blocker.write_text("a file where the folder would be")
    monkeypatch.setenv("KD_REPRO_CACHE", str(blocker))
    diskcache.update("x", "s", {"a": 1})  # no exception: the cache only saves time
    assert diskcache.read("x", "s") == {} and blocker.read_text() == "a file where the folder would be"
