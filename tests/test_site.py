"""The site's parts (benchmark/results/site.py) by hand: a cell's HTML and the nightly history. Whole
pages are checked on a trained store in test_results.py."""

import json

import pandas as pd

from benchmark.results.site import cell_html, nightly_history


def _cell(**values):
    base = {"status": "within", "published": 70.0, "reproduced": 70.456, "std": 0.25, "delta": 0.456, "note": None}
    return pd.Series({**base, **values})


def test_a_cell_shows_published_reproduced_spread_and_delta():
    assert cell_html(_cell()) == ('<td class="within" title="within tolerance or the seeds&#x27; spread">'
                                  '<span class="pub">70.00</span><br><b>70.46 ± 0.25</b><br>'
                                  '<span class="delta">Δ +0.46</span><br><small>within</small></td>')
    cited = cell_html(_cell(status="cited", reproduced=None, std=None, delta=None, note="from <KD>"))
    assert "<b>" not in cited and 'title="cited, not run: from &lt;KD&gt;"' in cited
    pending = cell_html(_cell(status="pending", published=None, reproduced=None, std=float("nan"), delta=float("nan")))
    assert '<span class="pub">—</span>' in pending and "<b>—</b>" in pending and "Δ" not in pending


def test_the_history_reads_each_nights_snapshot_and_skips_the_rest(tmp_path):
    for day, value in (("2026-11-27", 70.1), ("2026-11-28", 70.4)):
        (tmp_path / day).mkdir()
        snap = {"tables": {"t": {"cells": {"A / x": {"reproduced": value, "status": "within"}}}}}
        (tmp_path / day / "nightly.json").write_text(json.dumps(snap))
    (tmp_path / "2026-11-29").mkdir()  # a night without its snapshot
    (tmp_path / "2026-11-30").mkdir()
    (tmp_path / "2026-11-30" / "nightly.json").write_text("{")  # a damaged one
    (tmp_path / "notes").mkdir()  # not a date
    got = nightly_history(tmp_path, "t")
    assert got.to_dict("records") == [{"date": "2026-11-27", "cell": "A / x", "reproduced": 70.1, "status": "within"},
                                      {"date": "2026-11-28", "cell": "A / x", "reproduced": 70.4, "status": "within"}]
    assert nightly_history(tmp_path, "other").empty and nightly_history(None, "t").empty
