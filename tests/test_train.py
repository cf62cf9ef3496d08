"""The one-run trainer: results, exact resume after a kill, corrupt checkpoints, failures."""

import copy
import json
import os
import signal
import subprocess
import sys

import pytest
import torch
import yaml

from benchmark.engine import config as C
from benchmark.engine.evaluation import recalibrate_bn
from benchmark.engine.execution import ExecOptions
from benchmark.engine.train import train_run
from benchmark.store.layout import CHECKPOINT, METRICS, Store
from tests.helpers import REPO, cli, stop_after_epoch, tiny, tiny32, wait_for


def comparable(result):
    """What must be identical between an interrupted and an uninterrupted run."""
    return {"metrics": result["metrics"], "weights": result["weights_digest"]}


def history(store, rid):
    return [{k: v for k, v in m.items() if k != "time_s"} for m in store.metrics(rid)]


def test_a_run_trains_records_and_is_skipped_when_done(tmp_path):
    cfg = C.resolve(tiny())
    store = Store(tmp_path)
    epochs_seen = []
    res = train_run(cfg, store, ExecOptions(on_epoch=epochs_seen.append))
    rid = C.run_id(cfg)
    assert res["status"] == "done" and res["id"] == rid
    assert [e["epoch"] for e in epochs_seen] == [1, 2, 3]
    m = res["metrics"]
    assert m["last"]["epoch"] == 3 and m["top1"] == m["last"]["top1"]
    assert m["best"]["top1"] == max(h["test_top1"] for h in store.metrics(rid))
    assert 0 <= m["top1"] <= 100 and m["top5"] >= m["top1"]
    assert m["train_top1"] is not None
    assert [h["lr"] for h in store.metrics(rid)] == pytest.approx([0.05, 0.05, 0.005])
    for h in store.metrics(rid):  # every term's epoch mean (CE alone: the loss itself), grad norm, bad steps
        assert h["loss_ce"] == h["train_loss"] and h["nonfinite_frac"] == 0.0 and h["grad_norm"] > 0
    for key in ("code_revision", "torch", "torchvision", "device"):
        assert key in res["provenance"]
    assert json.loads((store.run_dir(rid) / "result.json").read_text())["id"] == rid
    logits = torch.load(store.run_dir(rid) / "test_logits.pt", weights_only=True)["logits"]
    assert logits.shape == (60, 10)
    # done: a second call trains nothing
    again = train_run(cfg, store, ExecOptions(on_epoch=lambda _m: pytest.fail("trained again")))
    assert again == json.loads((store.run_dir(rid) / "result.json").read_text())


def test_resume_from_every_epoch_equals_uninterrupted(tmp_path):
    cfg = C.resolve(tiny())
    full = train_run(cfg, Store(tmp_path / "full"), ExecOptions())
    for stop_after in (1, 2):
        store = Store(tmp_path / f"stop{stop_after}")
        short = dict(cfg, recipe=dict(cfg["recipe"]))
        # train the first epochs under the same id by interrupting through the progress hook
        class Stop(Exception):
            pass

        def hook(m, stop_after=stop_after):
            if m["epoch"] == stop_after:
                raise Stop
        with pytest.raises(Stop):
            train_run(short, store, ExecOptions(on_epoch=hook))
        resumed = train_run(cfg, store, ExecOptions())
        assert resumed["resumed_from_epoch"] == stop_after
        assert comparable(resumed) == comparable(full)
        assert history(store, full["id"]) == history(Store(tmp_path / "full"), full["id"])


def test_a_fresh_run_appends_its_metrics_in_place(tmp_path):
    cfg = C.resolve(tiny())
    store = Store(tmp_path)
    path = store.run_file(C.run_id(cfg), METRICS)
    inodes = []
    train_run(cfg, store, ExecOptions(on_epoch=lambda _m: inodes.append(path.stat().st_ino)))
    assert len(inodes) == 3 and len(set(inodes)) == 1  # one file grown epoch by epoch, never replaced


@pytest.mark.parametrize("stop_after", [2, 3])
def test_a_torn_metrics_line_is_ignored_and_the_resume_rewrites_it(tmp_path, stop_after):
    """A kill in the middle of an append leaves part of a line: readers skip it, and the resumed
    run (after epoch 2: it trains epoch 3; after epoch 3: it only finishes) restores the history
    from its checkpoint, so the file ends as an uninterrupted run's, no epoch twice."""
    cfg = C.resolve(tiny())
    full_store = Store(tmp_path / "full")
    full = train_run(cfg, full_store, ExecOptions())
    store = Store(tmp_path / "s")
    stop_after_epoch(cfg, store, stop_after)
    path = store.run_file(full["id"], METRICS)
    lines = path.read_text().splitlines(keepends=True)
    assert len(lines) == stop_after
    if stop_after == 2:  # epoch 3's line was being appended
        path.write_text("".join(lines) + lines[-1][:25])
    else:  # epoch 3 is checkpointed, its line cut short
        path.write_text("".join(lines[:-1]) + lines[-1][:25])
    assert history(store, full["id"]) == history(full_store, full["id"])[:2]
    resumed = train_run(cfg, store, ExecOptions())
    assert resumed["resumed_from_epoch"] == stop_after
    assert comparable(resumed) == comparable(full)
    assert history(store, full["id"]) == history(full_store, full["id"])
    assert [json.loads(line)["epoch"] for line in path.read_text().splitlines()] == [1, 2, 3]


def test_corrupt_checkpoint_falls_back_to_previous(tmp_path):
    cfg = C.resolve(tiny())
    full = train_run(cfg, Store(tmp_path / "full"), ExecOptions())
    store = Store(tmp_path / "s")

    class Stop(Exception):
        pass

    def hook(m):
        if m["epoch"] == 2:
            raise Stop
    with pytest.raises(Stop):
        train_run(cfg, store, ExecOptions(on_epoch=hook))
    ckpt = store.run_dir(full["id"]) / CHECKPOINT
    ckpt.write_bytes(ckpt.read_bytes()[:100])  # truncated, as by a full disk
    resumed = train_run(cfg, store, ExecOptions())
    assert resumed["resumed_from_epoch"] == 1
    assert any("unreadable" in n for n in resumed["checkpoint_notes"])
    assert comparable(resumed) == comparable(full)


def test_garbage_checkpoints_restart_from_scratch(tmp_path):
    cfg = C.resolve(tiny(recipe={"epochs": 2}))
    full = train_run(cfg, Store(tmp_path / "full"), ExecOptions())
    store = Store(tmp_path / "s")
    run_dir = store.run_dir(full["id"])
    run_dir.mkdir(parents=True)
    (run_dir / CHECKPOINT).write_bytes(b"not a checkpoint")
    (run_dir / "result.json").write_text("{ truncated")  # a corrupt result is not a finished run
    res = train_run(cfg, store, ExecOptions())
    assert res["status"] == "done" and res["resumed_from_epoch"] is None
    assert comparable(res) == comparable(full)


def test_non_finite_loss_fails_the_run_with_a_reason(tmp_path):
    cfg = C.resolve(tiny(recipe={"epochs": 2, "optimizer": {"lr": 1.0e30}}))
    res = train_run(cfg, Store(tmp_path), ExecOptions())
    assert res["status"] == "failed"
    assert "non-finite" in res["reason"]
    assert Store(tmp_path).result(res["id"])["status"] == "failed"


def test_a_non_finite_run_names_the_term_that_did_it(tmp_path):
    from tests.helpers import small_feature_run, teacher_checkpoint

    # FitNet's hint (about 2 at the start) times 1e39 overflows float32 at the first step, while
    # CE is finite there; the next steps are NaN throughout (the weights are).
    teacher = teacher_checkpoint(tmp_path, "resnet14", 7)
    res = train_run(small_feature_run(teacher, {"name": "fitnet", "weight": 1e39}, epochs=1), Store(tmp_path), ExecOptions())
    assert res["status"] == "failed"
    assert "term 'feature' went non-finite first (step 1 of the epoch)" in res["reason"], res["reason"]
    assert "non-finite steps: total 1" in res["reason"]


def test_student_learns_from_teacher_run(tmp_path):
    store = Store(tmp_path)
    teacher = train_run(C.resolve(tiny(model="resnet14")), store, ExecOptions())
    student_cfg = C.resolve(tiny(teacher={"run": teacher["id"]}, loss={"name": "kd", "tau": 4.0}))
    res = train_run(student_cfg, store, ExecOptions())
    assert res["status"] == "done"
    # missing teacher: failed with a reason, not a crash
    orphan = C.resolve(tiny(teacher={"run": "f" * 16}, loss={"name": "kd", "tau": 4.0}))
    res = train_run(orphan, store, ExecOptions())
    assert res["status"] == "failed" and "teacher" in res["reason"]


def test_checkpoint_teacher_verified_by_sha256(tmp_path):
    store = Store(tmp_path)
    teacher = train_run(C.resolve(tiny()), store, ExecOptions())
    path = store.run_dir(teacher["id"]) / "model.pt"
    import hashlib
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    good = C.resolve(tiny(teacher={"checkpoint": str(path), "sha256": digest, "model": "resnet8"},
                          loss={"name": "kd", "tau": 2.0}, seed=1))
    assert train_run(good, store, ExecOptions())["status"] == "done"
    bad = C.resolve(tiny(teacher={"checkpoint": str(path), "sha256": "0" * 64, "model": "resnet8"},
                         loss={"name": "kd", "tau": 2.0}, seed=2))
    res = train_run(bad, store, ExecOptions())
    assert res["status"] == "failed" and "sha256" in res["reason"]


@pytest.mark.heavy
def test_kill_9_then_rerun_gives_identical_result(tmp_path):
    raw = tiny32(recipe={"epochs": 6})
    raw["data"]["synthetic"]["per_class"] = 30  # 10 steps per epoch: 4 epochs of margin for the kill
    cfg_file = tmp_path / "run.yaml"
    cfg_file.write_text(yaml.safe_dump(raw))
    rid = C.run_id(C.resolve(raw))

    # the uninterrupted reference in this process (one torch thread, as the subprocesses: conftest)
    assert train_run(C.resolve(raw), Store(tmp_path / "ref"), ExecOptions())["status"] == "done"

    store = Store(tmp_path / "killed")
    proc = subprocess.Popen([sys.executable, str(REPO / "runner.py"), "train", str(cfg_file), "--store",
                             str(store.root)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: len(store.metrics(rid)) >= 2 if store.run_dir(rid).exists() else False, 120)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert store.result(rid) is None, "the run finished before the kill: the test proves nothing"
    again = cli("train", cfg_file, "--store", store.root)  # the same command, in this process
    assert again.returncode == 0, again.stderr
    resumed, reference = store.result(rid), Store(tmp_path / "ref").result(rid)
    assert resumed["resumed_from_epoch"] >= 2
    assert comparable(resumed) == comparable(reference)
    assert history(store, rid) == history(Store(tmp_path / "ref"), rid)


def _precise_bn_loop(model, batches) -> None:
    """The loop precise BN was before it called torch's update_bn (evaluation.py at 5470281)."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    was_training, momenta = model.training, [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        for batch in batches:
            model(batch[0])
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.train(was_training)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bn_recalibration_through_update_bn_gives_the_bits_of_the_old_loop(dtype):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                              torch.nn.Conv2d(8, 4, 3), torch.nn.BatchNorm2d(4, momentum=0.3), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 4 * 4, 6), torch.nn.BatchNorm1d(6)).to(dtype)
    batches = [(torch.randn(7, 3, 8, 8, dtype=dtype) * (i + 1) + i, None) for i in range(5)]
    ours, old = copy.deepcopy(net).eval(), copy.deepcopy(net).eval()
    recalibrate_bn(ours, batches)
    _precise_bn_loop(old, batches)
    buffers = dict(old.named_buffers())
    for name, b in ours.named_buffers():
        assert torch.equal(b, buffers[name]), name
    assert [m.momentum for m in ours if hasattr(m, "momentum")] == [0.1, 0.3, 0.1] and not ours.training
    assert not torch.equal(ours[1].running_mean, net[1].running_mean)  # it did recompute them


def test_bn_recalibration_is_the_plain_average_of_batch_statistics():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                              torch.nn.Conv2d(4, 2, 1), torch.nn.BatchNorm2d(2))
    net[1].running_mean.fill_(7.0)  # stale statistics, to be replaced
    batches = [(torch.randn(5, 3, 6, 6) * (i + 1), None) for i in range(3)]
    recalibrate_bn(net.eval(), batches)
    assert not net.training and net[1].momentum == 0.1  # mode and momentum restored
    with torch.no_grad():
        h = [net[0](x) for x, _ in batches]
    mean = torch.stack([a.mean(dim=(0, 2, 3)) for a in h]).mean(0)
    var = torch.stack([a.var(dim=(0, 2, 3), unbiased=True) for a in h]).mean(0)
    torch.testing.assert_close(net[1].running_mean, mean)
    torch.testing.assert_close(net[1].running_var, var)
    assert net[1].num_batches_tracked.item() == 3


def test_epoch_sharpness_gap_is_recorded_per_epoch_without_changing_the_training(tmp_path):
    """``recipe.epoch_sharpness_gap`` (ATKD Fig. 2): every epoch line gains the test set's mean
    teacher-minus-student sharpness gap at the loss's temperatures (KD: tau 4 for both), the last
    one equal to the gap of the run's saved test logits; the weights and every other number are
    those of the same run without it, which records no gap and keeps its id."""
    from benchmark.engine.assembly import build_pipeline
    from benchmark.engine.evaluation import evaluate
    from benchmark.engine.teachers import load_teacher
    from benchmark.store.layout import TEST_LOGITS
    from tests.helpers import small_feature_run, teacher_checkpoint

    (tmp_path / "teacher").mkdir()
    teacher = teacher_checkpoint(tmp_path / "teacher", "resnet8", seed=3)
    base = small_feature_run(teacher, {"name": "kd"}, epochs=2)
    assert base["recipe"]["epoch_sharpness_gap"] is False
    on = C.resolve({**base, "recipe": {**base["recipe"], "epoch_sharpness_gap": True}})
    assert C.run_id(on) != C.run_id(base)
    store = Store(tmp_path / "store")
    off_run, on_run = train_run(base, store, ExecOptions()), train_run(on, store, ExecOptions())
    assert off_run["weights_digest"] == on_run["weights_digest"]
    off_lines, on_lines = store.metrics(off_run["id"]), store.metrics(on_run["id"])
    assert len(on_lines) == 2 and all("test_sharpness_gap" not in m for m in off_lines)
    for a, b in zip(off_lines, on_lines):
        assert {k: v for k, v in a.items() if k != "time_s"} == \
            {k: v for k, v in b.items() if k not in ("time_s", "test_sharpness_gap")}
    z = torch.load(store.run_file(on_run["id"], TEST_LOGITS), weights_only=True)["logits"]
    v = evaluate(load_teacher(on, store, torch.device("cpu")), build_pipeline(on, ExecOptions()).test_batches())
    want = float((torch.logsumexp(v["logits"] / 4.0, dim=1) - torch.logsumexp(z / 4.0, dim=1)).mean())
    assert on_lines[-1]["test_sharpness_gap"] == pytest.approx(want, rel=1e-5, abs=1e-6)
    assert on_lines[0]["test_sharpness_gap"] != on_lines[-1]["test_sharpness_gap"]
