"""The declarative check of a method's options (benchmark/schema.py through benchmark/engine/methods)
rejects every value the checks it replaced rejected: the logit losses' run on a dummy tensor and
the distillers' class checks, on the grid of tests/fixtures/rejected_method_options.json (made at
the commit it names, by those checks). It needs no torch."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.engine import config as C
from benchmark.engine import methods
from benchmark.errors import BadInput
from tests.helpers import REPO, tiny

FIXTURE = Path(__file__).parent / "fixtures" / "rejected_method_options.json"
CASES = json.loads(FIXTURE.read_text())["cases"]


def test_the_fixture_covers_every_method_the_old_checks_knew():
    assert len(CASES) > 1500
    old = {"ce", "ls", "kd", "ats", "atkd", "mse", "fitnet", "at", "sp", "cc", "vid", "rkd", "pkt", "nst", "crd",
           "sckd", "ab", "ft", "fsp", "ieat", "reviewkd", "overhaul"}
    assert {name for name, _ in CASES} == old - {"ce"}  # CE has no options to get wrong


def test_every_old_rejection_is_a_declarative_rejection():
    missed = []
    for name, options in CASES:
        try:
            methods.resolve(name, options)
        except ValueError:
            continue
        missed.append((name, options))
    assert not missed


def test_every_old_rejection_is_bad_input_of_the_config():
    for name, options in CASES:
        with pytest.raises(BadInput) as err:
            C.resolve(tiny(loss={"name": name, **options}, teacher={"run": "0" * 16}), where="run.yaml")
        assert err.value.field == "loss" and "run.yaml" in str(err.value), (name, options)


def test_the_check_runs_without_torch():
    code = ("import json, sys; from benchmark.engine import methods\n"
            f"cases = json.loads(open({str(FIXTURE)!r}).read())['cases']\n"
            "bad = 0\n"
            "for name, options in cases:\n"
            "    try: methods.resolve(name, options)\n"
            "    except ValueError: bad += 1\n"
            "assert bad == len(cases), bad\n"
            "assert methods.resolve('kd', {'tau': 2}) ['student_tau'] == 2.0\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name,options,problem", [
    ("kd", {"tau": float("inf"), "student_tau": 2.0}, "tau=inf needs student_tau=inf"),
    ("kd", {"tau": float("inf"), "divergence": "soft_ce"}, "tau=inf is the limit of tau^2 * KL"),
    ("atkd", {"form": "code2020", "std": "unbiased"}, "form 'code2020' computes std='biased'"),
    ("kd", {"tau": -1.0}, "tau must be > 0"),
    ("crd", {"nce_k": 0}, "nce_k must be >= 1"),
])
def test_rules_between_options_say_what_is_wrong(name, options, problem):
    with pytest.raises(ValueError, match=problem.replace("^", r"\^").replace("*", r"\*")):
        methods.resolve(name, options)
