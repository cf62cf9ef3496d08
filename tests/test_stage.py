"""What the pre-training methods share (benchmark/engine/distillers/stage.py): the stage's published
defaults, the profiles' scaling, the checks."""

import pytest

from benchmark.catalog.profiles import SMOKE_STAGE_LR_SCALE, scale_loss_params
from benchmark.engine.distillers import resolve_params
from benchmark.engine.distillers.stage import STAGE_PARAMS, check_stage


def test_published_defaults_and_profile_scaling():
    for name, w in {"ab": 1.0, "ft": 200.0, "fsp": 50.0}.items():
        p = resolve_params(name)
        lr = None if name == "ft" else 0.05  # FT: RepDistiller's rule on the student (test below)
        assert (p["weight"], p["ce_weight"], p["kd_weight"], p["init_epochs"], p["init_lr"]) == (w, 1.0, 0.0, 30, lr)
    assert scale_loss_params({"name": "ab"}, "smoke")["init_epochs"] == 1
    assert scale_loss_params({"name": "ft", "init_epochs": 30}, "quick")["init_epochs"] == 8  # 30 / 4, rounded
    assert scale_loss_params({"name": "ft", "init_epochs": 30}, "paper") == {"name": "ft", "init_epochs": 30}
    assert scale_loss_params({"name": "kd", "tau": 4.0}, "smoke") == {"name": "kd", "tau": 4.0}
    assert scale_loss_params({"name": "reviewkd", "warmup_epochs": 20.0}, "quick")["warmup_epochs"] == 5.0
    assert scale_loss_params({"name": "reviewkd"}, "smoke")["warmup_epochs"] == 0.0
    # smoke's stand-in teachers: the stage rate shrinks (default or given); quick keeps it
    assert scale_loss_params({"name": "fsp"}, "smoke")["init_lr"] == pytest.approx(0.05 * SMOKE_STAGE_LR_SCALE)
    assert scale_loss_params({"name": "ft", "init_lr": 0.01}, "smoke")["init_lr"] == pytest.approx(1e-4)
    assert "init_lr" not in scale_loss_params({"name": "ft"}, "quick")
    assert "init_lr" not in scale_loss_params({"name": "reviewkd"}, "smoke")
    with pytest.raises(ValueError, match="init_epochs must be >= 0"):
        resolve_params("fsp", init_epochs=-1)


def test_check_stage_refuses_a_negative_epoch_count_and_a_rate_not_finite_and_positive():
    check_stage({"init_epochs": 0, "init_lr": 0.05})  # no stage at all is allowed
    check_stage({"init_epochs": 30, "init_lr": None})  # FT: the rate follows the student (ft.py)
    with pytest.raises(ValueError, match="init_epochs must be >= 0, got -1"):
        check_stage({"init_epochs": -1, "init_lr": 0.05})
    for bad in (0.0, -0.01, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="init_lr must be finite and > 0"):
            check_stage({"init_epochs": 1, "init_lr": bad})
    assert STAGE_PARAMS == {"init_epochs": 30, "init_lr": 0.05}  # RepDistiller's --init_epochs, --learning_rate
