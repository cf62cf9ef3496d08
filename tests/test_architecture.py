"""ARCHITECTURE.md says, per module, what it may import; these tests keep that true.

A "unit" is a top-level module of the package (``plan``) or a subpackage (``models``). For each unit
the document lists the units it imports when it is loaded ("Imports") and those it imports only
inside a function ("Lazily": kept out of start-up, or to break what would be a cycle). The sets must
equal what the code does, so a new import is a one-line change to the document, made on purpose.
"""

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "benchmark"
DOC = REPO / "ARCHITECTURE.md"


def _unit_of(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imported_unit(node: ast.ImportFrom, path: Path) -> list[str]:
    """The package's units a ``from ... import`` names (relative or absolute), else []."""
    if node.level == 0:
        parts = (node.module or "").split(".")
        if parts[0] != "benchmark":
            return []
        return [parts[1]] if len(parts) > 1 else [a.name for a in node.names]
    here = list(path.relative_to(PACKAGE).parts[:-1])  # the folder the module sits in, under benchmark/
    base = here[: len(here) - (node.level - 1)]
    if node.level - 1 > len(here):
        raise AssertionError(f"{path}: import above the package")
    full = base + (node.module.split(".") if node.module else [])
    return [full[0]] if full else [a.name for a in node.names]


def _imports_of(path: Path) -> list[tuple[str, bool]]:
    """(unit, inside a function?) for every import of the package in one file."""
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue  # names for annotations only: never imported when the code runs
            if isinstance(child, ast.ImportFrom):
                found.extend((target, in_function) for target in _imported_unit(child, path))
            elif isinstance(child, ast.Import):
                found.extend((a.name.split(".")[1], in_function) for a in child.names if a.name.startswith("benchmark."))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(path.read_text(), str(path)), False)
    return found


def code_imports() -> dict[str, dict[str, set[str]]]:
    """unit -> {"load": units imported at load time, "lazy": units imported only inside functions}."""
    found: dict[str, dict[str, set[str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "__init__.py":  # the package's docstring and version only
            assert not any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(ast.parse(path.read_text())))
            continue
        unit = _unit_of(path)
        sets = found.setdefault(unit, {"load": set(), "lazy": set()})
        for target, in_function in _imports_of(path):
            if target != unit:
                sets["lazy" if in_function else "load"].add(target)
    for sets in found.values():
        sets["lazy"] -= sets["load"]
    return found


def _names(text: str) -> set[str]:
    return set(re.findall(r"`([a-z_]+)`", text))


def documented(doc: Path = DOC) -> dict[str, dict[str, set[str]]]:
    """unit -> {"load", "lazy"} as ARCHITECTURE.md states them (``### `unit` `` headings)."""
    units: dict[str, dict[str, set[str]]] = {}
    current = None
    for line in doc.read_text().splitlines():
        heading = re.match(r"^### `([a-z_]+)`", line)
        if heading:
            current = units.setdefault(heading.group(1), {"load": set(), "lazy": set(), "stated": False})
            continue
        stated = re.match(r"^Imports: (.*?)(?:\s*Lazily: (.*))?$", line)
        if stated and current is not None:
            current["load"] = _names(stated.group(1))
            current["lazy"] = _names(stated.group(2) or "")
            current["stated"] = True
    return units


def test_every_unit_has_a_section_and_no_section_is_stale():
    code, doc = code_imports(), documented()
    assert sorted(set(code) - set(doc)) == [], "modules missing from ARCHITECTURE.md"
    assert sorted(set(doc) - set(code)) == [], "ARCHITECTURE.md names modules that do not exist"
    assert [u for u, d in doc.items() if not d["stated"]] == [], "sections without an 'Imports:' line"


def test_documented_imports_are_the_code_imports():
    code, doc = code_imports(), documented()
    wrong = {u: {"code": {k: sorted(v) for k, v in code[u].items()},
                 "doc": {k: sorted(doc[u][k]) for k in ("load", "lazy")}}
             for u in sorted(code) if u in doc and (code[u]["load"], code[u]["lazy"]) != (doc[u]["load"], doc[u]["lazy"])}
    assert wrong == {}


def test_load_time_imports_have_no_cycle():
    graph = {u: s["load"] for u, s in code_imports().items()}
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def walk(unit, trail):
        state[unit] = 1
        for nxt in sorted(graph.get(unit, ())):
            if state.get(nxt) == 1:
                raise AssertionError(f"import cycle at load time: {' -> '.join(trail + [unit, nxt])}")
            if nxt not in state:
                walk(nxt, trail + [unit])
        state[unit] = 2

    for unit in sorted(graph):
        if unit not in state:
            walk(unit, [])


def test_the_checks_see_a_changed_import(tmp_path):
    """The comparison is not vacuous: a document missing one real import is caught."""
    code = code_imports()
    unit = next(u for u in sorted(code) if code[u]["load"])
    dropped = sorted(code[unit]["load"])[0]
    text = DOC.read_text()
    section = re.search(rf"^### `{unit}`.*?^Imports: .*$", text, flags=re.M | re.S)
    assert section, unit
    broken = text[: section.start()] + re.sub(rf"`{dropped}`,? ?", "", section.group(0)) + text[section.end():]
    (tmp_path / "ARCHITECTURE.md").write_text(broken)
    assert documented(tmp_path / "ARCHITECTURE.md")[unit]["load"] == code[unit]["load"] - {dropped}


def test_the_tensorboard_export_cannot_reach_the_planner():
    """Training never plans: everything the trainer's TensorBoard export can import, at load time
    or inside a function, transitively, leaves out the planner, the manifests and the results
    frames (it reads the stored plans instead)."""
    code = code_imports()
    reach, todo = set(), ["tboard"]
    while todo:
        unit = todo.pop()
        for nxt in code.get(unit, {"load": set(), "lazy": set()})["load"] | code.get(unit, {}).get("lazy", set()):
            if nxt not in reach:
                reach.add(nxt)
                todo.append(nxt)
    assert "stored_plan" in reach and not reach & {"plan", "manifest", "results", "reported_plan", "aggregate"}
