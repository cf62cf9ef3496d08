"""A cell's verdict: is the published number what the reproduced runs support?

Tolerances are per kind of quantity, since one table can mix accuracies (points), training
losses and sharpness gaps (ATKD Table 5). A manifest's ``tolerance`` is either one number for
every kind (the older form) or a mapping by kind, the kinds it leaves out taking
``DEFAULT_TOLERANCES``:

```yaml
tolerance: {accuracy: 0.5, loss: 0.2, gap: 0.05}
```

A measured cell of the paper profile is *within* when

- |reproduced - published| <= the kind's tolerance, or
- the published number lies in the interval the seeds support: mean ± t(0.975, df) * se, with
  se^2 = s_r^2 / n_r + s_p^2 / n_p (Welch's standard error of a difference of two means): s_r and
  n_r are the reproduced runs' std and count, s_p the paper's printed std (LS-KD prints one) or,
  where it prints none, s_r (the paper's runs are taken to vary as ours do), n_p the manifest's
  seed count (the paper's under the paper profile); df = n_r - 1, or n_p - 1 with a single run.

and *outside* otherwise. Smoke and quick numbers are never judged: their status is
``not comparable`` (a one-epoch chance accuracy that happens to sit near the paper's number is
no reproduction). Nor are *stale* cells (``stale``): a number trained by code that has changed since
(benchmark/engine/revisions.py) is shown, not judged.
"""

from __future__ import annotations

import math

NOT_COMPARABLE = "not comparable"
# A cell with a run trained at an older numerics revision of its code (benchmark/runs/stale.py): its
# number is shown, never judged, until ``reproduce --rerun-stale`` trains it again.
STALE = "stale"
CONFIDENCE = 0.975  # two-sided 95 %
# Every status a cell can have (a report's cells, the results frames' ``status`` column).
STATUSES = ("within", "outside", NOT_COMPARABLE, STALE, "measured", "pending", "failed", "cited", "setting")
# The statuses of a cell whose number claims and figures use. A stale cell shows its number but is
# left out of them, as it is of the verdicts: that number came from code that has changed since.
WITH_NUMBER = ("within", "outside", NOT_COMPARABLE, "measured")


def kind_of(value) -> str:
    """The kind of quantity a cell's ``value`` rule yields."""
    if value in (None, "top1", "top5", "top1/top5", "train_top1"):
        return "accuracy"
    if value == "train_loss":
        return "loss"
    if isinstance(value, dict) and "gap" in str(value.get("analysis", "")):
        return "gap"
    return "analysis"


def t_quantile(df: int) -> float:
    from scipy.stats import t

    return float(t.ppf(CONFIDENCE, df))


def seed_interval(mean: float, std: float | None, n: int, published_std: float | None,
                  paper_seeds: int) -> tuple[float, float] | None:
    """The interval around the reproduced mean that the seeds support (see the module docstring);
    None when neither side gives a spread."""
    s_r = std if (std is not None and n >= 2) else None
    s_p = published_std if published_std is not None else s_r
    if s_p is None:
        return None
    n_p = max(paper_seeds, 1)
    var = (s_r ** 2 / n if s_r is not None else 0.0) + s_p ** 2 / n_p
    df = n - 1 if n >= 2 else n_p - 1
    if var <= 0 or df < 1:
        return None
    half = t_quantile(df) * math.sqrt(var)
    return mean - half, mean + half


def judge(reproduced: float, published: float, tolerance: float, std: float | None, n: int,
          published_std: float | None, paper_seeds: int) -> tuple[str, tuple[float, float] | None, str]:
    """(status, interval, basis) of a measured paper-profile cell."""
    interval = seed_interval(reproduced, std, n, published_std, paper_seeds)
    if abs(reproduced - published) <= tolerance + 1e-9:
        return "within", interval, "tolerance"
    if interval is not None and interval[0] <= published <= interval[1]:
        return "within", interval, "seed spread"
    return "outside", interval, "tolerance and seed spread" if interval is not None else "tolerance"


def difference_decided(va: float, vb: float, spread_a: tuple[float | None, int] | None,
                       spread_b: tuple[float | None, int] | None) -> bool:
    """Whether the seeds' spread can tell va from vb: |va - vb| beyond t * Welch's standard error.
    With no spread on either side (single runs, published numbers) the means decide."""
    parts, dfs = [], []
    for spread in (spread_a, spread_b):
        if spread and spread[0] is not None and spread[1] >= 2:
            parts.append(spread[0] ** 2 / spread[1])
            dfs.append(spread[1] - 1)
    if not parts:
        return True
    half = t_quantile(min(dfs)) * math.sqrt(sum(parts))
    return abs(va - vb) > half
