"""The error types (benchmark/errors.py): BadInput's one line, Problems' one line per problem."""

from benchmark.errors import BadInput, Failed, Problems


def test_bad_input_names_the_file_the_field_and_the_problem():
    assert str(BadInput("run.yaml", "recipe.lr", "must be > 0")) == "run.yaml: recipe.lr: must be > 0"
    assert BadInput("--store", None, "not a folder").message() == "--store: not a folder"
    e = BadInput(3, None, "x")
    assert (e.where, e.field, e.problem) == ("3", None, "x")


def test_problems_are_one_line_each_and_read_as_their_first():
    p = Problems([BadInput("a.yaml", "seed", "not an int"), BadInput("b.pt", None, "no such file")])
    assert p.lines() == ["a.yaml: seed: not an int", "b.pt: no such file"]
    assert isinstance(p, BadInput) and str(p) == "a.yaml: seed: not an int"
    assert not issubclass(Failed, BadInput)  # exit code 1, not 2
