"""Code digests (benchmark/codedigest.py): blind to comments, docstrings and layout, and following a
function's module-level names transitively; a numerics part's digest built on them."""


from benchmark.codedigest import function_digest, source_digest
from benchmark.engine import revisions as R
from tests.helpers import REPO

PACKAGE = REPO / "benchmark" / "engine"  # where every numerics part lives (revisions.PACKAGE)


def test_the_digest_ignores_comments_docstrings_and_layout_and_sees_a_code_edit(tmp_path):
    original = (PACKAGE / "precision.py").read_text()
    base = source_digest(original)
    body = original.splitlines(keepends=True)
    k = next(i for i, line in enumerate(body) if line.startswith("def "))
    commented = "".join(body[:k] + ["# a new comment\n", "\n"] + body[k:]).replace('"""', '"""Reworded. ', 1)
    relaid = original.replace("    ", "  ").replace('"', "'")  # 2-space indents, single quotes
    assert source_digest(commented) == base and source_digest(relaid) == base
    edited = original.replace("else t.float()", "else t.half()")
    assert edited != original and source_digest(edited) != base
    # a part's digest, on a copy of the package's file
    (tmp_path / "schedules.py").write_text((PACKAGE / "schedules.py").read_text())
    recipe = R.part_digest("recipe", tmp_path)
    assert recipe == R.part_digest("recipe")
    text = (tmp_path / "schedules.py").read_text()
    commented = text.replace("    base = recipe[\"optimizer\"][\"lr\"]\n", "    # the base rate\n    base = recipe['optimizer']['lr']\n")
    assert commented != text
    (tmp_path / "schedules.py").write_text(commented)
    assert R.part_digest("recipe", tmp_path) == recipe  # a comment and the quote style: no change
    (tmp_path / "schedules.py").write_text(text + "\n\nSCHEDULE_NAMES = ('linear',)\n")
    assert R.part_digest("recipe", tmp_path) == recipe  # a constant no schedule reaches: not a schedule's code
    (tmp_path / "schedules.py").write_text(text.replace("return [list(p) for p in steps]", "return [list(p) for p in steps][:1]"))
    assert R.part_digest("recipe", tmp_path) != recipe  # a helper scale_loss_schedule reaches
    (tmp_path / "schedules.py").write_text(text.replace("return base * (epoch + 1) / warm", "return base * epoch / warm"))
    assert R.part_digest("recipe", tmp_path) != recipe


def test_function_digests_follow_module_level_names_transitively():
    src = "A = 1\nB = 2\n\ndef f(x):\n    return g(x) + A\n\ndef g(x):\n    return x * C\n\nC = 3\n\ndef h():\n    return B\n"
    base = function_digest(src, ["f"])
    assert function_digest(src.replace("C = 3", "C = 4"), ["f"]) != base       # f -> g -> C
    assert function_digest(src.replace("B = 2", "B = 5"), ["f"]) == base       # h's constant
    assert function_digest(src.replace("return B", "return -B"), ["f"]) == base
