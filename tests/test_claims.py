"""Claims (benchmark/results/claims.py): held, not held or undecided, on the means and on the spread."""


from benchmark.results.claims import evaluate_claim
from benchmark.results.verdict import difference_decided


def test_claims_use_the_spread():
    claim = {"text": "A beats B in every column",
             "compare": {"left": {"row": "A"}, "op": ">", "right": {"row": "B"}, "over": "columns"}}
    values = {("A", "c1"): 72.0, ("B", "c1"): 70.0, ("A", "c2"): 70.3, ("B", "c2"): 70.0}
    spreads = {k: (0.5, 3) for k in values}

    def decided(a, b, va, vb):
        return difference_decided(va, vb, spreads[a], spreads[b])

    value = lambda r, c: values[(r, c)]  # noqa: E731
    on_means = evaluate_claim(claim, value, ["A", "B"], ["c1", "c2"])
    assert on_means["status"] == "held"
    spread = evaluate_claim(claim, value, ["A", "B"], ["c1", "c2"], decided=decided)
    assert spread["status"] == "undecided" and "spread cannot decide 1 of 2" in spread["detail"]
    values[("A", "c2")] = 67.0  # fails beyond the spread
    assert evaluate_claim(claim, value, ["A", "B"], ["c1", "c2"], decided=decided)["status"] == "not held"
    values[("A", "c2")] = 69.8  # fails within the spread: cannot say
    assert evaluate_claim(claim, value, ["A", "B"], ["c1", "c2"], decided=decided)["status"] == "undecided"
    trend = {"text": "rises", "trend": {"row": "A", "direction": "increasing"}}
    values.update({("A", "c1"): 70.0, ("A", "c2"): 70.2})
    assert evaluate_claim(trend, value, ["A", "B"], ["c1", "c2"])["status"] == "held"
    assert evaluate_claim(trend, value, ["A", "B"], ["c1", "c2"], decided=decided)["status"] == "undecided"


def test_claims_held_not_held_undecided():
    vals = {("A", "x"): 1.0, ("A", "y"): 2.0, ("B", "x"): 0.5, ("B", "y"): 3.0, ("C", "x"): None, ("C", "y"): 1.0}
    value = lambda r, c: vals[(r, c)]  # noqa: E731
    rows, cols = ["A", "B", "C"], ["x", "y"]
    beats = {"text": "A > B everywhere", "compare": {"left": {"row": "A"}, "op": ">", "right": {"row": "B"},
                                                      "over": "columns"}}
    assert evaluate_claim(beats, value, rows, cols)["status"] == "not held"  # 2.0 < 3.0 at y
    one = {"text": "A > B at x", "compare": {"left": {"row": "A", "col": "x"}, "op": ">",
                                             "right": {"row": "B", "col": "x"}}}
    assert evaluate_claim(one, value, rows, cols)["status"] == "held"
    rising = {"text": "A rises", "trend": {"row": "A", "direction": "increasing"}}
    assert evaluate_claim(rising, value, rows, cols)["status"] == "held"
    assert evaluate_claim({"text": "C rises", "trend": {"row": "C", "direction": "increasing"}}, value, rows,
                          cols)["status"] == "undecided"
    col_trend = {"text": "y falls down the rows", "trend": {"col": "y", "direction": "decreasing"}}
    assert evaluate_claim(col_trend, value, rows, cols)["status"] == "not held"
    # Restricted to some columns / rows, the same claims hold.
    beats_at_x = {"text": "A > B at x", "compare": {**beats["compare"], "cols": ["x"]}}
    assert evaluate_claim(beats_at_x, value, rows, cols)["status"] == "held"
    b_falls = {"text": "y falls from B to C", "trend": {"col": "y", "direction": "decreasing", "rows": ["B", "C"]}}
    assert evaluate_claim(b_falls, value, rows, cols)["status"] == "held"
