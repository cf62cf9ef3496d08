"""The papers' published numbers, read from ``tables/<table-id>.csv``.

Each table file is laid out like the paper's table (see ``tables/README.md``): a block of
``# key: value`` header lines (``paper``, ``source``, ``caption``, ``metric``, ``notes``; a line
``#   more text`` continues the previous key), then a CSV whose first column ``row`` holds the
paper's row labels and whose other columns are the paper's column labels.

A cell is one of::

    71.35            a number as printed (the digits are kept in ``Cell.raw``)
    71.547/90.297    top-1 / top-5
    71.547±0.122     mean ± std
    71.547±0.122/90.297±0.175   top-1 mean ± std / top-5 mean ± std (LS-KD's App. D)
    -                the paper prints a dash (not run / not applicable)
    (empty)          the paper has no such cell, or it could not be decoded (the header says which)

A table's standard deviations printed in another table of the paper (LS-KD's App. D gives those of
Tables 2 A, 2 B and 4) live in ``tables/stds/<table-id>.csv``, laid out like the table they belong to;
``load_stds`` reads them. Where that table's means differ from the main table's, its header key
``differs`` lists the cells (``row / column``, comma-separated): any other difference is an error.

Usage::

    t = load_published("ats-table2")
    t.cells[("KD+ATS", "WRN28-8/SFV1")].value   # 73.58
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BadInput

__all__ = [
    "Cell",
    "Published",
    "UnknownTable",
    "default_tables_dir",
    "load_published",
    "load_stds",
    "published_stds",
    "parse_cell",
    "published_ids",
]

REQUIRED_KEYS = ("paper", "source", "caption", "metric")

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_NUMBER_RE = re.compile(rf"^{_NUMBER}$")
_TOP5_RE = re.compile(rf"^({_NUMBER})/({_NUMBER})$")
_STD_RE = re.compile(rf"^({_NUMBER})±({_NUMBER})$")
_TOP5_STD_RE = re.compile(rf"^({_NUMBER})±({_NUMBER})/({_NUMBER})±({_NUMBER})$")
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_HEADER_RE = re.compile(r"^# ([A-Za-z][A-Za-z0-9_ -]*):(?: (.*))?$")
_CONTINUATION_RE = re.compile(r"^#  +(\S.*)$")


class UnknownTable(BadInput, ValueError):
    """A table id with no ``tables/<id>.csv`` (a ``ValueError`` and a ``BadInput``)."""


@dataclass(frozen=True)
class Cell:
    """One published cell. ``value`` is the top-1 / main number, ``None`` for a dash or an empty cell."""

    raw: str
    value: float | None = None
    top5: float | None = None
    std: float | None = None
    dash: bool = False
    top5_std: float | None = None

    @property
    def empty(self) -> bool:
        """True when the paper has no such cell (or it could not be decoded)."""
        return self.raw == ""


@dataclass
class Published:
    """One paper table as published."""

    table_id: str
    header: dict[str, str]
    rows: list[str]
    cols: list[str]
    cells: dict[tuple[str, str], Cell]
    path: Path | None = field(default=None, compare=False)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.rows), len(self.cols)

    def cell(self, row: str, col: str) -> Cell:
        """The cell at (row, col); a ``KeyError`` naming the table and the known labels otherwise."""
        try:
            return self.cells[(row, col)]
        except KeyError:
            if row not in self.rows:
                raise KeyError(f"{self.table_id}: no row {row!r} (rows: {', '.join(self.rows)})") from None
            raise KeyError(f"{self.table_id}: no column {col!r} (columns: {', '.join(self.cols)})") from None

    def value(self, row: str, col: str) -> float | None:
        """The top-1 / main number at (row, col), ``None`` for a dash or an empty cell."""
        return self.cell(row, col).value

    def numbers(self) -> dict[tuple[str, str], float]:
        """Every cell that holds a number, by (row, col)."""
        return {k: c.value for k, c in self.cells.items() if c.value is not None}


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # the grammar admits no inf/nan, but float() would
        raise ValueError(f"not a finite number: {text!r}")
    return value


def parse_cell(text: str) -> Cell:
    """Parse one cell: ``''``, ``'-'``, ``'71.35'``, ``'71.547/90.297'``, ``'71.547±0.122'`` or
    ``'71.547±0.122/90.297±0.175'``.

    Surrounding whitespace is ignored. Anything else raises ``ValueError``.
    """
    if not isinstance(text, str):
        raise ValueError(f"a cell is a string, not {type(text).__name__}: {text!r}")
    raw = text.strip()
    if raw == "":
        return Cell(raw="")
    if raw == "-":
        return Cell(raw="-", dash=True)
    if _NUMBER_RE.match(raw):
        return Cell(raw=raw, value=_number(raw))
    m = _TOP5_RE.match(raw)
    if m:
        return Cell(raw=raw, value=_number(m.group(1)), top5=_number(m.group(2)))
    m = _STD_RE.match(raw)
    if m:
        return Cell(raw=raw, value=_number(m.group(1)), std=_std(m.group(2), text))
    m = _TOP5_STD_RE.match(raw)
    if m:
        return Cell(raw=raw, value=_number(m.group(1)), std=_std(m.group(2), text), top5=_number(m.group(3)),
                    top5_std=_std(m.group(4), text))
    raise ValueError(
        f"cannot parse cell {text!r}: expected a number, 'top1/top5', 'mean±std', 'top1±std/top5±std', '-' or "
        "an empty cell"
    )


def _std(text: str, cell: str) -> float:
    std = _number(text)  # the grammar admits no sign but float() would read one
    if std < 0:
        raise ValueError(f"negative std in cell {cell!r}")
    return std


def default_tables_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "tables"


def _dir(tables_dir: str | Path | None) -> Path:
    return default_tables_dir() if tables_dir is None else Path(tables_dir)


def published_ids(tables_dir: str | Path | None = None) -> list[str]:
    """The ids of every table file in ``tables_dir`` (default: the repository's ``tables/``), in natural order."""
    d = _dir(tables_dir)
    if not d.is_dir():
        return []
    ids = [p.stem for p in d.glob("*.csv") if _ID_RE.match(p.stem)]
    return sorted(ids, key=_natural_key)


def _natural_key(name: str) -> list:
    """'atkd-table2' before 'atkd-table10'."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)]


def load_published(table_id: str, tables_dir: str | Path | None = None) -> Published:
    """Read ``tables/<table_id>.csv``. An unknown id raises ``ValueError`` (``UnknownTable``) naming it;
    a malformed file raises ``ValueError`` naming the file and the line."""
    d = _dir(tables_dir)
    path = d / f"{table_id}.csv" if isinstance(table_id, str) and _ID_RE.match(table_id) else None
    if path is None or not path.is_file():
        known = published_ids(d)
        raise UnknownTable(
            "table id", None,
            f"unknown published table {table_id!r} (known: {', '.join(known) if known else f'none in {d}'})",
        )
    return _parse_file(table_id, path)


def load_stds(table_id: str, tables_dir: str | Path | None = None) -> dict[tuple[str, str], Cell]:
    """The cells of ``tables/stds/<table_id>.csv`` that hold a std, by (row, col); ``{}`` when the paper
    prints no separate std table. ValueError naming the file when it does not fit the main table: a row
    or column the main table lacks, or a mean that differs from the main table's without being listed
    in the header's ``differs``."""
    main = load_published(table_id, tables_dir)
    path = _dir(tables_dir) / "stds" / f"{table_id}.csv"
    if not path.is_file():
        return {}
    stds = _parse_file(table_id, path)
    for label, names, known in (("row", stds.rows, main.rows), ("column", stds.cols, main.cols)):
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"{path}: {label} {unknown[0]!r} is not in tables/{table_id}.csv")
    listed = {tuple(part.strip() for part in item.split(" / ", 1))
              for item in stds.header.get("differs", "").split(",") if item.strip()}
    differing = {key for key, c in stds.cells.items()
                 if c.value is not None and (c.value, c.top5) != (main.cells[key].value, main.cells[key].top5)}
    if listed != differing:
        wrong = sorted(differing - listed) or sorted(listed - differing)
        raise ValueError(f"{path}: header 'differs' must list exactly the cells whose means differ from "
                         f"tables/{table_id}.csv; check {wrong[0][0]} / {wrong[0][1]}")
    return {key: c for key, c in stds.cells.items() if c.std is not None}


def published_stds(table_id: str, tables_dir: str | Path | None = None) -> dict[tuple[str, str], float]:
    """The paper's std of each cell that has one, by (row, col): printed in the cell itself
    (``mean±std``) or, failing that, in ``tables/stds/<table_id>.csv``. What a verdict's interval uses."""
    separate = {key: c.std for key, c in load_stds(table_id, tables_dir).items()}
    inline = {key: c.std for key, c in load_published(table_id, tables_dir).cells.items() if c.std is not None}
    return separate | inline


def _parse_file(table_id: str, path: Path) -> Published:
    lines = path.read_text(encoding="utf-8").splitlines()

    def fail(lineno: int, problem: str) -> ValueError:
        return ValueError(f"{path}:{lineno}: {problem}")

    header: dict[str, str] = {}
    last_key: str | None = None
    n = 0
    while n < len(lines) and lines[n].startswith("#"):
        line = lines[n].rstrip()
        m = _CONTINUATION_RE.match(line)
        if m and last_key is not None:
            header[last_key] += " " + m.group(1).strip()
        else:
            m = _HEADER_RE.match(line)
            if not m:
                raise fail(n + 1, f"header line is neither '# key: value' nor a '#   continuation': {line!r}")
            key = m.group(1).strip()
            if key in header:
                raise fail(n + 1, f"header key {key!r} given twice")
            header[key] = (m.group(2) or "").strip()
            last_key = key
        n += 1
    missing = [k for k in REQUIRED_KEYS if not header.get(k)]
    if missing:
        raise fail(1, f"header lacks {', '.join(missing)}")

    body = lines[n:]
    for i, line in enumerate(body, start=n + 1):
        if "#" in line:
            raise fail(i, "'#' below the header (pandas would read it as a comment)")
    while body and not body[-1].strip():
        body.pop()
    if not body:
        raise fail(n + 1, "no column header line")
    records = list(csv.reader(io.StringIO("\n".join(body) + "\n")))
    head = records[0]
    if not head or head[0] != "row":
        raise fail(n + 1, f"the first column must be 'row', got {head[:1]!r}")
    cols = head[1:]
    if not cols:
        raise fail(n + 1, "no data columns")
    if any(not c.strip() for c in cols):
        raise fail(n + 1, "an empty column name")
    if len(set(cols)) != len(cols):
        raise fail(n + 1, "duplicate column names")

    rows: list[str] = []
    cells: dict[tuple[str, str], Cell] = {}
    for offset, rec in enumerate(records[1:], start=1):
        lineno = n + 1 + offset
        if not rec:
            raise fail(lineno, "blank line inside the table")
        if len(rec) != len(head):
            raise fail(lineno, f"{len(rec)} fields, the column header has {len(head)}")
        label = rec[0]
        if not label.strip():
            raise fail(lineno, "empty row label")
        if label in rows:
            raise fail(lineno, f"duplicate row label {label!r}")
        rows.append(label)
        for col, text in zip(cols, rec[1:]):
            try:
                cells[(label, col)] = parse_cell(text)
            except ValueError as e:
                raise fail(lineno, f"column {col!r}: {e}") from None
    if not rows:
        raise fail(n + 1, "no data rows")
    return Published(table_id=table_id, header=header, rows=rows, cols=cols, cells=cells, path=path)
