"""Google Speech Commands (ATS Table 8) across the package: ATS's tau^2 option and one short training
run end to end. The WAV reader and MFCC are in test_audio.py, the dataset in test_data_speech.py,
the networks in test_models_speech.py."""

import math

import pytest
import torch

from benchmark.engine.losses import make_loss
from benchmark.engine.models import build_model

# --------------------------------------------------------------------------- ATS's tau^2 option


@pytest.mark.parametrize("scale", ["student", "tau1", "tau2"])
def test_ats_tau_scale_squares_the_named_temperature(scale):
    torch.manual_seed(0)
    z_s, z_t, y = torch.randn(4, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64), torch.tensor([0, 1, 2, 4])
    tau1, tau2, s_tau = 4.0, 2.0, 1.5
    loss = make_loss("ats", tau1=tau1, tau2=tau2, student_tau=s_tau, tau_scale=scale, ce_weight=0.3, kd_weight=0.7)
    taus = torch.full_like(z_t, tau2)
    taus[torch.arange(4), y] = tau1
    p_t = torch.softmax(z_t / taus, dim=1)
    soft_ce = -(p_t * torch.log_softmax(z_s / s_tau, dim=1)).sum(1).mean()
    factor = {"student": s_tau, "tau1": tau1, "tau2": tau2}[scale] ** 2
    want = 0.3 * torch.nn.functional.cross_entropy(z_s, y) + 0.7 * factor * soft_ce
    torch.testing.assert_close(loss(z_s, z_t, y), want)
    without = make_loss("ats", tau1=tau1, tau2=tau2, student_tau=s_tau, tau_scale=scale, tau_squared=False,
                        ce_weight=0.3, kd_weight=0.7)
    torch.testing.assert_close(without(z_s, z_t, y), 0.3 * torch.nn.functional.cross_entropy(z_s, y) + 0.7 * soft_ce)
    with pytest.raises(ValueError, match="tau_scale must be one of"):
        make_loss("ats", tau_scale="teacher")


# --------------------------------------------------------------------------- end to end


def test_a_dscnn_student_trains_on_the_stand_in(tmp_path):
    """One KD+ATS run of ats-table8's kind (DS-CNN from a teacher file, tau_scale tau1) for two
    short steps on the generated clips: the loader, the MFCCs, the models and the loss together."""
    import hashlib

    from benchmark.engine import config as C
    from benchmark.engine.train import ExecOptions, train_run
    from benchmark.store.layout import Store

    torch.manual_seed(0)
    path = tmp_path / "teacher.pt"
    torch.save(build_model("dscnn", 35).state_dict(), path)
    teacher = {"checkpoint": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "model": "dscnn"}
    cfg = C.resolve({
        "dataset": "gsc", "model": "dscnn", "teacher": teacher, "seed": 0,
        "data": {"source": "synthetic", "synthetic": {"per_class": 1, "test_per_class": 1, "image_size": 11}},
        "loss": {"name": "ats", "tau_scale": "tau1", "ce_weight": 0.1, "kd_weight": 0.9},
        "recipe": {"epochs": 1, "batch_size": 16, "steps_per_epoch": 2, "final_train_eval": False,
                   "init_scheme": "ats_code", "schedule": {"name": "cosine"}},
    })
    res = train_run(cfg, Store(tmp_path / "store"), ExecOptions(num_workers=0))
    assert res["status"] == "done"
    (epoch,) = Store(tmp_path / "store").metrics(res["id"])
    assert len(epoch["first_steps_loss"]) == 2 and all(math.isfinite(v) for v in epoch["first_steps_loss"])
    assert 0.0 <= epoch["test_top1"] <= 100.0
