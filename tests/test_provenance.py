"""Where a result came from (benchmark/engine/provenance.py)."""

import re
import socket

import torch
import torchvision

from benchmark.engine.provenance import code_revision, provenance


def test_the_revision_is_gits_with_dirty_marked_and_the_versions_are_torchs():
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", code_revision())  # this checkout is a git repository
    p = provenance("cpu")
    assert (p["device"], p["torch"], p["cudnn"], p["host"]) == ("cpu", torch.__version__, None, socket.gethostname())
    assert p["torchvision"] == torchvision.__version__  # read from its version.py, local part included
    assert p["code_revision"] == code_revision() and p["threads"] == torch.get_num_threads() == 1  # conftest's one
