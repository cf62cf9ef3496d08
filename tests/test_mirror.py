"""The tests mirror the package: every module of benchmark/ with logic has a test module of its own.

The rule (README, "Tests"): the module ``benchmark/<stage>/<name>.py`` is tested by
``tests/test_<name>.py``, a package's ``__init__.py`` by ``tests/test_<package>.py``; where two modules
with logic share a name, each takes its folder's name in front (``engine/data/speech.py`` ->
``tests/test_data_speech.py``). The test module must import the module it is named after.

A module has logic when it defines a function or a method (a class of fields only, an exception
class or a module of re-exports has none). A module with logic and no test module of its own must
be in ALLOWED below, with the reason; the list is meant to shrink.
"""

import ast
from collections import Counter
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "benchmark"
TESTS = REPO / "tests"

# module (dotted, under benchmark/) -> why it has no test module of its own (none now: keep it so)
ALLOWED: dict[str, str] = {}


def dotted(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def has_logic(path: Path) -> bool:
    """A function or method defined anywhere in the module (lambdas in field defaults do not count)."""
    tree = ast.parse(path.read_text())
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in ast.walk(tree))


def logic_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if has_logic(p))


def _name(path: Path) -> str:
    return path.parent.name if path.name == "__init__.py" else path.stem


def mirror_name(path: Path, shared: Counter) -> str:
    """The test module's file name for a module (see the module docstring)."""
    name = _name(path)
    if shared[name] > 1:
        folder = path.parent.parent if path.name == "__init__.py" else path.parent
        name = f"{folder.name}_{name}"
    return f"test_{name}.py"


@lru_cache(maxsize=None)
def imported_modules(path: Path) -> frozenset[str]:
    """Every ``benchmark`` module a test file imports, at any depth, with each name it imports from one
    (``from benchmark.engine import config`` counts as importing ``benchmark.engine.config``)."""
    found = set()
    for n in ast.walk(ast.parse(path.read_text())):
        if isinstance(n, ast.Import):
            found |= {a.name for a in n.names if a.name.startswith("benchmark")}
        elif isinstance(n, ast.ImportFrom) and n.level == 0 and (n.module or "").startswith("benchmark"):
            found |= {n.module} | {f"{n.module}.{a.name}" for a in n.names}
    return frozenset(found)


def mirror() -> dict[str, str]:
    """module -> its test module's file name, for every module with logic."""
    mods = logic_modules()
    shared = Counter(_name(p) for p in mods)
    return {dotted(p): mirror_name(p, shared) for p in mods}


@lru_cache(maxsize=1)
def missing() -> dict[str, str]:
    """The modules with logic whose test module is absent or does not import them."""
    out = {}
    for module, test in mirror().items():
        path = TESTS / test
        if not path.exists():
            out[module] = f"tests/{test} does not exist"
        elif module not in imported_modules(path):
            out[module] = f"tests/{test} does not import {module}"
    return out


def test_every_module_with_logic_has_its_own_test_module():
    unlisted = {m: why for m, why in missing().items() if m not in ALLOWED}
    assert not unlisted, "modules without their test module (add it, see tests/test_mirror.py):\n" + "\n".join(
        f"  {m}: {why}" for m, why in sorted(unlisted.items()))


def test_the_allow_list_holds_only_modules_still_without_one():
    """An entry is dropped once its module has a test module (or is gone, or has lost its logic)."""
    stale = sorted(set(ALLOWED) - set(missing()))
    assert not stale, f"remove from ALLOWED (they have a test module now, or no logic): {stale}"
    assert all(why.strip() for why in ALLOWED.values())


def test_the_rule_names_test_modules_as_the_readme_says(tmp_path):
    """The rule itself, on a made-up package: a plain module, a package's __init__, a shared name,
    and a module without logic (not listed)."""
    pkg = tmp_path / "benchmark"
    for rel, text in {"engine/data/speech.py": "def f(): pass\n", "engine/models/speech.py": "class A:\n def g(self): pass\n",
                      "engine/models/__init__.py": "def build(): pass\n", "runs/queue.py": "def scan(): pass\n",
                      "runs/options.py": "class O:\n    x: int = 1\n", "losses/__init__.py": "from x import y\n"}.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    mods = sorted(p for p in pkg.rglob("*.py") if has_logic(p))
    shared = Counter(_name(p) for p in mods)
    got = {str(p.relative_to(pkg)): mirror_name(p, shared) for p in mods}
    assert got == {"engine/data/speech.py": "test_data_speech.py", "engine/models/speech.py": "test_models_speech.py",
                   "engine/models/__init__.py": "test_models.py", "runs/queue.py": "test_queue.py"}
    (tmp_path / "t.py").write_text("from benchmark.engine import config\nimport benchmark.runs.queue\n"
                                   "def f():\n    from benchmark.store.layout import Store\n")
    assert imported_modules(tmp_path / "t.py") == {"benchmark.engine", "benchmark.engine.config", "benchmark.runs.queue",
                                                   "benchmark.store.layout", "benchmark.store.layout.Store"}
