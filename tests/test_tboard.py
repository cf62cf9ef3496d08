"""TensorBoard export's names (benchmark/engine/tboard.py): the tag of each logged quantity and the
run's readable name. The export itself is tested on a trained store in test_results.py."""

from benchmark.engine.tboard import run_name, tag


def test_tags_group_losses_accuracies_and_the_rest():
    assert [tag(k) for k in ("train_loss", "loss_ce", "loss_kd", "test_top1", "train_top5", "lr", "grad_norm")] == \
        ["loss/total", "loss/ce", "loss/kd", "accuracy/test_top1", "accuracy/train_top5", "train/lr", "train/grad_norm"]


def test_run_names_are_tables_model_loss_tau_seed_and_id():
    cfg = {"model": "resnet8", "loss": {"name": "kd", "tau": 4.0}, "seed": 1}
    assert run_name(cfg, "abc", ["t2", "t1"]) == "t1+t2/resnet8-kd-tau4-seed1-abc"
    assert run_name({**cfg, "loss": {"name": "kd", "tau": float("inf")}}, "abc", []) == "runs/resnet8-kd-tauinf-seed1-abc"
    assert run_name({**cfg, "loss": {"name": "ce"}}, "abc", ["t"]) == "t/resnet8-ce-seed1-abc"
