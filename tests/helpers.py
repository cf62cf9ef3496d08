"""Small run configs shared by the trainer and command-line tests."""

import copy
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

TINY = {
    "dataset": "cifar10",
    "data": {"source": "synthetic", "synthetic": {"per_class": 24, "test_per_class": 6}},
    "model": "resnet8",
    "loss": {"name": "ce"},
    "recipe": {"epochs": 3, "batch_size": 32, "optimizer": {"lr": 0.05},
               "schedule": {"name": "multistep", "milestones": [2], "gamma": 0.1}},
    "seed": 0,
}


def tiny(**changes) -> dict:
    cfg = copy.deepcopy(TINY)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key].update(value)
        else:
            cfg[key] = value
    return cfg


def runner(*args, cwd=None, timeout=300):
    return subprocess.run([sys.executable, str(REPO / "runner.py"), *map(str, args)], cwd=cwd or REPO,
                          capture_output=True, text=True, timeout=timeout)
