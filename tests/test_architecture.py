"""ARCHITECTURE.md says which layer each part of the package is in and, per module, what it imports;
these tests keep that true.

A "unit" is a module of the package: a flat one (``errors``), a module of a stage package
(``engine.train``), or a package inside a stage counted as one (``engine.models``); a stage package's
``__init__`` is a unit of its own (``results``) only when it imports something. Every import is read
with ``ast`` at any depth: at load time, inside a function (lazily, to keep torch or pandas out of
start-up) and under ``if TYPE_CHECKING:`` (annotations only). The layers, lowest first, are defined
once, in ARCHITECTURE.md's "Layers" list: no import points from a lower layer into a higher one, and
the units' imports (load-time and lazy together) have no circle.
"""

import ast
import re
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "benchmark"
DOC = REPO / "ARCHITECTURE.md"

LOAD, LAZY, TYPING = "load", "lazy", "typing"


def unit_of_module(parts: list[str]) -> str:
    """The unit of a module given by its dotted path under benchmark/ (``["engine", "models", "vgg"]``)."""
    if len(parts) >= 2 and (PACKAGE / parts[0] / parts[1]).is_dir():
        return f"{parts[0]}.{parts[1]}"  # a package inside a stage: one unit
    return ".".join(parts[:2])


def _unit_of(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return unit_of_module(parts)


def _targets(node: ast.AST, path: Path) -> list[list[str]]:
    """The modules of the package (dotted parts under benchmark/) that one import statement loads."""
    if isinstance(node, ast.Import):
        return [a.name.split(".")[1:] for a in node.names if a.name.startswith("benchmark.")]
    if node.level == 0:
        parts = (node.module or "").split(".")
        if parts[0] != "benchmark":
            return []
        base = parts[1:]
    else:
        here = list(path.relative_to(PACKAGE).parts[:-1])  # the folder the module sits in, under benchmark/
        if node.level - 1 > len(here):
            raise AssertionError(f"{path}: import above the package")
        base = here[: len(here) - (node.level - 1)] + (node.module.split(".") if node.module else [])
    found = []
    for alias in node.names:  # `from benchmark.engine import config`: the name is a module
        sub = base + [alias.name]
        is_module = (PACKAGE.joinpath(*sub).with_suffix(".py").is_file() or PACKAGE.joinpath(*sub).is_dir())
        found.append(sub if is_module else base)
    return [t for t in found if t]


def imports_of(path: Path, source: str | None = None) -> list[tuple[str, str]]:
    """(unit, LOAD | LAZY | TYPING) for every import of the package in one file (``source``: its
    text instead of the file's, to probe the reading)."""
    found = []

    def visit(node, how):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                visit(child, TYPING)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.extend((unit_of_module(t), how) for t in _targets(child, path))
            inner = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            visit(child, LAZY if inner and how == LOAD else how)

    visit(ast.parse(source if source is not None else path.read_text(), str(path)), LOAD)
    return found


@lru_cache(maxsize=1)  # one reading of the package per test session (the tests only read it)
def code_imports() -> dict[str, dict[str, set[str]]]:
    """unit -> {LOAD: units imported at load time, LAZY: only inside functions, TYPING: for annotations}."""
    found: dict[str, dict[str, set[str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "__init__.py":  # the package's docstring and version only
            assert not any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(ast.parse(path.read_text())))
            continue
        unit, imports = _unit_of(path), imports_of(path)
        if path.name == "__init__.py" and path.parent.parent == PACKAGE and not imports:
            continue  # a stage package's docstring only
        sets = found.setdefault(unit, {LOAD: set(), LAZY: set(), TYPING: set()})
        for target, how in imports:
            if target != unit:
                sets[how].add(target)
    for sets in found.values():
        sets[LAZY] -= sets[LOAD]
        sets[TYPING] -= sets[LOAD] | sets[LAZY]
    return found


def _names(text: str) -> set[str]:
    return set(re.findall(r"`([a-z_][a-z_.]*)`", text))


def documented(doc: Path = DOC) -> dict[str, dict[str, set[str]]]:
    """unit -> {LOAD, LAZY} as ARCHITECTURE.md states them (``### `unit` `` headings)."""
    units: dict[str, dict] = {}
    current = None
    for line in doc.read_text().splitlines():
        heading = re.match(r"^### `([a-z_.]+)`", line)
        if heading:
            current = units.setdefault(heading.group(1), {LOAD: set(), LAZY: set(), "stated": False})
            continue
        stated = re.match(r"^Imports: (.*?)(?:\s*Lazily: (.*))?$", line)
        if stated and current is not None:
            current[LOAD] = _names(stated.group(1))
            current[LAZY] = _names(stated.group(2) or "")
            current["stated"] = True
    return units


def layers(doc: Path = DOC) -> list[tuple[str, set[str]]]:
    """ARCHITECTURE.md's "Layers" list, lowest first: (layer, its flat modules) per numbered line
    ``N. `name` ...``; a stage package's layer is named after its folder and has no flat modules."""
    found = []
    for line in doc.read_text().splitlines():
        m = re.match(r"^\d+\. `([a-z_]+)`(.*)$", line)
        if m:
            found.append((m.group(1), _names(m.group(2))))
    return found


def layer_of() -> dict[str, int]:
    """unit -> its layer's rank (0 the lowest)."""
    ranks = {name: i for i, (name, _) in enumerate(layers())}
    flat = {module: ranks[name] for name, modules in layers() for module in modules}
    out = {}
    for unit in code_imports():
        out[unit] = flat[unit] if "." not in unit and unit in flat else ranks.get(unit.split(".")[0])
    return out


def test_every_unit_has_a_section_and_no_section_is_stale():
    code, doc = code_imports(), documented()
    assert sorted(set(code) - set(doc)) == [], "modules missing from ARCHITECTURE.md"
    assert sorted(set(doc) - set(code)) == [], "ARCHITECTURE.md names modules that do not exist"
    assert [u for u, d in doc.items() if not d["stated"]] == [], "sections without an 'Imports:' line"


def test_documented_imports_are_the_code_imports():
    code, doc = code_imports(), documented()
    wrong = {u: {"code": {k: sorted(code[u][k]) for k in (LOAD, LAZY)},
                 "doc": {k: sorted(doc[u][k]) for k in (LOAD, LAZY)}}
             for u in sorted(code) if u in doc and (code[u][LOAD], code[u][LAZY]) != (doc[u][LOAD], doc[u][LAZY])}
    assert wrong == {}


def test_every_module_is_in_exactly_one_layer():
    named = [name for name, _ in layers()]
    assert len(named) == len(set(named)) and len(named) >= 3, named
    listed = [m for _, modules in layers() for m in modules]
    # a folder listed with the flat modules (the `losses` alias) is one of them, not a stage
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    stages = sorted(folders - set(listed))
    flat_layers = [name for name, modules in layers() if modules]
    assert sorted(set(named) - set(flat_layers)) == stages, "every stage package is a layer of its own"
    flat = sorted({p.stem for p in PACKAGE.glob("*.py") if p.name != "__init__.py"} | (folders & set(listed)))
    assert sorted(listed) == flat, "every flat module of benchmark/ is listed in exactly one layer"
    assert len(flat) <= 8, f"at most 8 modules lie flat in benchmark/: {flat}"


def test_no_import_points_up_a_layer():
    """At any depth: load time, inside a function, and annotations only."""
    code, rank = code_imports(), layer_of()
    up = sorted(f"{unit} -> {target}" for unit, sets in code.items() for how in (LOAD, LAZY, TYPING)
                for target in sets[how] if rank[target] > rank[unit])
    assert up == []


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def walk(unit, trail):
        state[unit] = 1
        for nxt in sorted(graph.get(unit, ())):
            if state.get(nxt) == 1:
                return trail + [unit, nxt]
            if nxt not in state:
                found = walk(nxt, trail + [unit])
                if found:
                    return found
        state[unit] = 2
        return None

    for unit in sorted(graph):
        if unit not in state:
            found = walk(unit, [])
            if found:
                return found[found.index(found[-1]):]
    return None


def test_imports_have_no_circle():
    """Load-time and lazy imports together (an import inside a function runs as surely as one at
    the top, only later); annotations-only imports never run and are left out."""
    graph = {u: s[LOAD] | s[LAZY] for u, s in code_imports().items()}
    cycle = find_cycle(graph)
    assert cycle is None, f"import circle: {' -> '.join(cycle)}"


def test_the_checks_see_what_they_claim_to(tmp_path):
    """Not vacuous: a lazy import that points up, one that closes a circle, and a document missing
    one real import are each caught."""
    engine_train = PACKAGE / "engine" / "train.py"
    probe = engine_train.read_text() + "\n\ndef _probe():\n    from ..results import report\n"
    found = imports_of(engine_train, probe)
    assert ("results.report", LAZY) in found
    assert layer_of()["results.report"] > layer_of()["engine.train"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    code = code_imports()
    unit = next(u for u in sorted(code) if code[u][LOAD])
    dropped = sorted(code[unit][LOAD])[0]
    text = DOC.read_text()
    section = re.search(rf"^### `{re.escape(unit)}`.*?^Imports: .*$", text, flags=re.M | re.S)
    assert section, unit
    broken = text[: section.start()] + re.sub(rf"`{re.escape(dropped)}`,? ?", "", section.group(0)) + text[section.end():]
    (tmp_path / "ARCHITECTURE.md").write_text(broken)
    assert documented(tmp_path / "ARCHITECTURE.md")[unit][LOAD] == code[unit][LOAD] - {dropped}


def test_the_tensorboard_export_cannot_reach_the_planner():
    """Training never plans: everything the trainer's TensorBoard export can import, at load time
    or inside a function, transitively, leaves out the planner, the manifests and the results
    frames (it reads the stored plans instead)."""
    code = code_imports()
    reach, todo = set(), ["engine.tboard"]
    while todo:
        unit = todo.pop()
        sets = code.get(unit, {LOAD: set(), LAZY: set()})
        for nxt in sets[LOAD] | sets[LAZY]:
            if nxt not in reach:
                reach.add(nxt)
                todo.append(nxt)
    assert "store.stored_plan" in reach
    assert not reach & {"catalog.plan", "catalog.manifest", "results.frames", "results.reported_plan",
                        "results.aggregate"}


def test_every_import_of_the_package_names_something_that_exists():
    """A lazy import runs only when its function does: a name moved to another module would fail
    there, at run time, long after the move. Every ``from benchmark... import name``, at any depth,
    must name a module or an attribute that exists."""
    import importlib.util

    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        folder = list(path.relative_to(REPO).parent.parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or not (node.level or (node.module or "").startswith("benchmark")):
                continue
            base = folder[: len(folder) - (node.level - 1)] if node.level else []
            module = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module
            loaded = importlib.import_module(module)
            for alias in node.names:
                if not hasattr(loaded, alias.name) and importlib.util.find_spec(f"{module}.{alias.name}") is None:
                    missing.append(f"{path.relative_to(REPO)}: from {module} import {alias.name}")
    assert missing == []
