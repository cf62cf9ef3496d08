"""The papers' qualitative claims as checks over a table's cells.

A manifest states each claim once; the report evaluates it on the reproduced numbers (held,
not held, or not yet decidable while cells are missing) and, as a sanity check of the claim's
wording, on the published numbers too.

```yaml
claims:
  - text: "KD+ATS beats KD in every column"
    compare: {left: {row: KD+ATS}, op: ">", right: {row: KD}, over: columns}
  - text: "with ATKD the student improves as the teacher grows"
    trend: {row: Test acc/ATKD, direction: increasing}
  - text: "MSE >= KL at tau=20 for every student"
    compare: {left: {col: MSE}, op: ">=", right: {col: KL tau=20}, over: rows}
```

``compare`` pairs cells along rows or columns (``over: columns`` compares, in every column,
the left row's cell with the right row's cell; ``over: rows`` likewise for two columns; a
single pair needs both ``row`` and ``col`` on each side and no ``over``); ``cols`` (with
``over: columns``) or ``rows`` (with ``over: rows``) restricts the pairs to those columns or rows.
``trend`` asks that a row's cells (in the paper's column order; ``cols`` to choose) or a column's
cells (in the paper's row order; ``rows`` to choose) rise or fall. Aggregate (Avg) columns are
left out of every comparison.
"""

from __future__ import annotations

from ..catalog.sections import OPS


def _pairs(body: dict, rows: list[str], cols: list[str]) -> list[tuple[tuple, tuple]]:
    left, right, over = body["left"], body["right"], body.get("over")
    if over == "columns":
        return [((left["row"], c), (right["row"], c)) for c in body.get("cols", cols)]
    if over == "rows":
        return [((r, left["col"]), (r, right["col"])) for r in body.get("rows", rows)]
    return [((left["row"], left["col"]), (right["row"], right["col"]))]


def evaluate_claim(claim: dict, value, rows: list[str], cols: list[str], decided=None) -> dict:
    """`value(row, col)` gives a number or None. Returns {"text", "status", "detail"}.

    ``decided(cell_a, cell_b, va, vb)``, where given, says whether the seeds' spread can tell the
    two numbers apart (benchmark.results.verdict.difference_decided): a comparison or trend step it cannot
    decide leaves the claim ``undecided`` rather than held or not held on the means alone."""
    decided = decided or (lambda *_: True)
    if "compare" in claim:
        body = claim["compare"]
        op = OPS[body["op"]]
        checks = []
        for a, b in _pairs(body, rows, cols):
            va, vb = value(*a), value(*b)
            if va is None or vb is None:
                checks.append((a, b, None, va, vb, True))
                continue
            checks.append((a, b, op(va, vb), va, vb, decided(a, b, va, vb)))
        failed = [c for c in checks if c[2] is False and c[5]]
        missing = [c for c in checks if c[2] is None]
        unclear = [c for c in checks if c[2] is not None and not c[5]]
        if failed:
            a, b, _, va, vb, _ = failed[0]
            return {"text": claim["text"], "status": "not held",
                    "detail": f"{len(failed)} of {len(checks)} comparisons fail, e.g. {a[0]}/{a[1]} = {va:.2f} "
                              f"vs {b[0]}/{b[1]} = {vb:.2f}"}
        if missing:
            return {"text": claim["text"], "status": "undecided",
                    "detail": f"{len(missing)} of {len(checks)} comparisons lack a number"}
        if unclear:
            a, b, _, va, vb, _ = unclear[0]
            return {"text": claim["text"], "status": "undecided",
                    "detail": f"the seeds' spread cannot decide {len(unclear)} of {len(checks)} comparisons, e.g. "
                              f"{a[0]}/{a[1]} = {va:.2f} vs {b[0]}/{b[1]} = {vb:.2f}"}
        return {"text": claim["text"], "status": "held", "detail": f"{len(checks)} comparisons hold"}
    body = claim["trend"]
    if "row" in body:
        cells = [(body["row"], c) for c in body.get("cols", cols)]
    else:
        cells = [(r, body["col"]) for r in body.get("rows", rows)]
    vals = [value(*c) for c in cells]
    if any(v is None for v in vals):
        return {"text": claim["text"], "status": "undecided",
                "detail": f"{sum(v is None for v in vals)} of {len(vals)} cells lack a number"}
    steps = list(zip(cells, cells[1:], vals, vals[1:]))
    rising = body["direction"] == "increasing"
    bad = [s for s in steps if (s[3] < s[2] if rising else s[3] > s[2]) and decided(*s)]
    unclear = [s for s in steps if not decided(*s)]
    trend = " → ".join(f"{v:.2f}" for v in vals)
    if bad:
        return {"text": claim["text"], "status": "not held", "detail": f"{len(bad)} of {len(steps)} steps go the "
                                                                       f"other way: {trend}"}
    if unclear:
        return {"text": claim["text"], "status": "undecided",
                "detail": f"the seeds' spread cannot decide {len(unclear)} of {len(steps)} steps: {trend}"}
    return {"text": claim["text"], "status": "held", "detail": trend}
