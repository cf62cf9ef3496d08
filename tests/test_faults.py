"""The fault-injection table of issue 14: each bad input or store fault -> the exit code, a
fragment of the one-line message, and which files were (not) touched. Rows run in-process
through `benchmark.cli.main` (the same code path as `runner.py`, without a torch start-up each)."""

import hashlib
import json
import math
import os

import pytest
import torch
import yaml

from benchmark import cli
from benchmark.engine import config as C
from benchmark.engine.execution import ExecOptions
from benchmark.engine.models import build_model
from benchmark.engine.train import train_run
from benchmark.runs.options import WorkerOptions
from benchmark.runs.queue import scan
from benchmark.runs.worker import run_worker
from benchmark.store.layout import Store, atomic_write_json
from tests.helpers import REPO, stop_after_epoch, tiny


def snapshot(root):
    """Every file under root with its digest: `nothing written` means this did not change."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line(code, err, expected_code, *needles):
    assert code == expected_code, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]


def write_config(tmp_path, raw, name="run.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw) if not isinstance(raw, str) else raw)
    return path


# ---------------------------------------------------------------- command-line values

ARG_ROWS = [
    (["reproduce", "atkd-table5", "--workers", "-1"], "--workers"),
    (["worker", "--max-attempts", "0"], "--max-attempts: must be >= 1"),
    (["worker", "--lease-seconds", "-5"], "--lease-seconds"),
    (["worker", "--lease-seconds", "0.1"], "--lease-seconds: must be a number of seconds >= 2"),
    (["worker", "--lease-seconds", "nan"], "--lease-seconds"),
    (["nightly", "--tables", "atkd-table5", "--out", "{tmp}/n", "--date", "2026-13-45"], "--date: must be a date"),
    (["nightly", "--tables", "atkd-table5", "--out", "{tmp}/n", "--date", "../../x"], "--date"),
    (["models", "--num-classes", "0"], "--num-classes: must be >= 1"),
    (["models", "--num-classes", "-3"], "--num-classes"),
    (["data", "download", "imagenet22k"], "unknown dataset 'imagenet22k'"),
    (["data", "check", "nosuch"], "unknown dataset 'nosuch'"),
    (["bench", "--steps", "0"], "--steps: must be >= 1"),
    (["bench", "--save", "{tmp}/afile"], "is a file"),
    (["train", "{tmp}/run.yaml", "--device", "tpu9"], "--device: must be cpu, cuda"),
    (["train", "{tmp}/run.yaml", "--store", "{tmp}/afile"], "--store: {tmp}/afile is a file"),
    (["reproduce", "atkd-table5", "--store", "{tmp}/afile"], "is a file"),
    (["status", "--store", "{tmp}/afile"], "is a file"),
    (["report", "atkd-table5", "--out", "{tmp}/afile"], "--out: {tmp}/afile is a file"),
    (["reproduce", "atkd-table5", "--store", "{tmp}/s", "--numerics", "turbo"], "--numerics: invalid choice: 'turbo'"),
    (["worker", "--store", "{tmp}/s", "--numerics", "exact"], "--numerics: invalid choice"),
    (["bench", "--numerics", "FAST"], "--numerics: invalid choice"),
    (["reproduce", "atkd-table5", "--store", "{tmp}/s", "--horizontal", "maybe"], "--horizontal: invalid choice: 'maybe'"),
    (["worker", "--store", "{tmp}/s", "--horizontal", "maybe"], "--horizontal: invalid choice"),
    (["bench", "--horizontal-sizes", "0,4"], "--horizontal-sizes: '0,4' is not a list of positive integers"),
]


@pytest.mark.parametrize("argv, needle", ARG_ROWS, ids=[" ".join(r[0][:3]) for r in ARG_ROWS])
def test_bad_command_line_values(tmp_path, capsys, argv, needle):
    (tmp_path / "afile").write_text("I am a file")
    write_config(tmp_path, tiny())
    before = snapshot(tmp_path)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, _, err = run_cli(capsys, *argv)
    assert_one_line(code, err, 2, needle.replace("{tmp}", str(tmp_path)))
    assert snapshot(tmp_path) == before


# ---------------------------------------------------------------- run configs

def _cfg(**changes):
    raw = tiny(**changes)
    return raw


CONFIG_ROWS = [
    ("lr nan", _cfg(recipe={"optimizer": {"lr": math.nan}}), "recipe.optimizer.lr: must be a finite number"),
    ("lr inf", _cfg(recipe={"optimizer": {"lr": math.inf}}), "recipe.optimizer.lr"),
    ("momentum nan", _cfg(recipe={"optimizer": {"momentum": math.nan}}), "recipe.optimizer.momentum"),
    ("zero std", _cfg(data={"source": "synthetic", "normalize": {"mean": [0.5] * 3, "std": [0.2, 0.0, 0.2]}}),
     "data.normalize.std: must be positive"),
    ("negative epochs", _cfg(recipe={"epochs": -5}), "recipe.epochs"),
    ("per_class 1e11", _cfg(data={"source": "synthetic", "synthetic": {"per_class": 10 ** 11}}), "data.synthetic"),
    ("image_size 100000", _cfg(data={"source": "synthetic", "synthetic": {"image_size": 100000}}),
     "data.synthetic.image_size"),
    ("duplicate key", "dataset: cifar10\nseed: 0\nmodel: resnet8\nloss: ce\nseed: 5\n", "duplicate key 'seed'"),
]


@pytest.mark.parametrize("raw, needle", [r[1:] for r in CONFIG_ROWS], ids=[r[0] for r in CONFIG_ROWS])
def test_bad_run_configs(tmp_path, capsys, raw, needle):
    path = write_config(tmp_path, raw)
    before = snapshot(tmp_path)
    code, _, err = run_cli(capsys, "train", path, "--store", tmp_path / "store", "--device", "cpu")
    assert_one_line(code, err, 2, str(path), needle)
    assert snapshot(tmp_path) == before and not (tmp_path / "store").exists()


def test_negative_epochs_in_a_manifest_are_refused_under_every_profile(tmp_path, capsys, monkeypatch):
    import shutil

    catalog = tmp_path / "catalog"
    shutil.copytree(REPO / "tests" / "catalog", catalog)
    m = catalog / "manifests" / "test" / "klmse-table5.yaml"
    m.write_text(m.read_text().replace("defaults: {model: resnet8,", "defaults: {recipe_changes: {epochs: -5}, model: resnet8,"))
    monkeypatch.setenv("KD_REPRO_CATALOG", str(catalog))
    for profile in ("smoke", "quick"):  # both rewrite the epochs: -5 must not pass as 1
        code, _, err = run_cli(capsys, "plan", "klmse-table5", "--profile", profile, "--store", tmp_path / "s")
        assert_one_line(code, err, 2, "recipe.epochs", "-5")
    assert not (tmp_path / "s").exists()


# ---------------------------------------------------------------- the pre-flight: teacher and init files

def _teacher_file(tmp_path, kind):
    path = tmp_path / f"teacher-{kind}.pt"
    if kind == "garbage":
        path.write_bytes(b"this is not a checkpoint")
    elif kind == "truncated":
        torch.save(build_model("resnet8", 10).state_dict(), path)
        path.write_bytes(path.read_bytes()[:3000])
    elif kind == "list":
        torch.save([torch.zeros(3)], path)
    elif kind == "classes":
        torch.save(build_model("resnet8", 100).state_dict(), path)
    elif kind == "architecture":
        torch.save(build_model("resnet14", 10).state_dict(), path)
    elif kind == "empty":
        torch.save({}, path)
    return path


TEACHER_ROWS = [("garbage", "not a loadable checkpoint"), ("truncated", "not a loadable checkpoint"),
                ("list", "holds a list, not a state dict"), ("classes", "does not fit resnet8 with 10 classes"),
                ("architecture", "does not fit resnet8"), ("empty", "holds no weights"),
                ("missing", "does not exist")]


@pytest.mark.parametrize("kind, needle", TEACHER_ROWS, ids=[r[0] for r in TEACHER_ROWS])
def test_bad_teacher_checkpoints_are_found_before_anything_is_written(tmp_path, capsys, kind, needle):
    path = _teacher_file(tmp_path, kind)
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "0" * 64
    raw = tiny(teacher={"checkpoint": str(path), "sha256": digest, "model": "resnet8"}, loss={"name": "kd"})
    cfg = write_config(tmp_path, raw)
    before = snapshot(tmp_path)
    code, _, err = run_cli(capsys, "train", cfg, "--store", tmp_path / "store", "--device", "cpu")
    assert_one_line(code, err, 2, f"teacher checkpoint {path}", needle)
    assert snapshot(tmp_path) == before and not (tmp_path / "store").exists()


@pytest.mark.parametrize("kind, needle", [("missing", "does not exist"), ("garbage", "does not load into resnet8"),
                                          ("architecture", "does not load into resnet8")])
def test_bad_init_weights_are_found_before_anything_is_written(tmp_path, capsys, kind, needle):
    path = _teacher_file(tmp_path, kind)
    cfg = write_config(tmp_path, tiny(init={"weights": str(path)}))
    before = snapshot(tmp_path)
    code, _, err = run_cli(capsys, "train", cfg, "--store", tmp_path / "store", "--device", "cpu")
    assert_one_line(code, err, 2, f"init weights {path}", needle)
    assert snapshot(tmp_path) == before and not (tmp_path / "store").exists()


class Pickled:
    """An arbitrary class a checkpoint may pickle: the safe loader refuses it."""


@pytest.mark.parametrize("what", ["teacher checkpoint", "init weights"])
def test_a_file_pickling_an_arbitrary_class_is_refused_in_our_own_line(tmp_path, capsys, what):
    path = tmp_path / "pickled.pt"
    torch.save({**build_model("resnet8", 10).state_dict(), "extra": Pickled()}, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if what == "teacher checkpoint":
        raw = tiny(teacher={"checkpoint": str(path), "sha256": digest, "model": "resnet8"}, loss={"name": "kd"})
    else:
        raw = tiny(init={"weights": str(path)})
    cfg = write_config(tmp_path, raw)
    before = snapshot(tmp_path)
    code, out, err = run_cli(capsys, "train", cfg, "--store", tmp_path / "store", "--device", "cpu")
    assert code == 2 and snapshot(tmp_path) == before
    assert err.strip() == (
        f"error: {what} {path}: refused: it holds pickled objects the safe loader does not allow "
        f"({__name__}.Pickled); convert it to a plain state_dict saved with torch.save(model.state_dict(), path), "
        f"or name its layout (the program that wrote it) in an issue so that the suite can read it"), err
    assert "weights_only=False" not in out + err and "weights_only` set to `False" not in out + err
    if what == "teacher checkpoint":  # the trainer, through the API without the pre-flight: failed at once
        from benchmark.engine.train import load_teacher
        from benchmark.engine.train_errors import RunFailed

        with pytest.raises(RunFailed, match=r"refused: it holds pickled objects .*Pickled\); convert it"):
            load_teacher(C.resolve(raw), Store(tmp_path / "store"), torch.device("cpu"))


def test_reproduce_preflight_lists_every_missing_item_and_writes_nothing(tmp_path, capsys, monkeypatch):
    """Issue 15's pre-flight: the paper profile of a CIFAR-100 table without CIFAR-100."""
    monkeypatch.setenv("KD_REPRO_CATALOG", str(REPO / "tests" / "catalog"))
    store = tmp_path / "store"
    code, out, err = run_cli(capsys, "reproduce", "klmse-table5", "--profile", "paper", "--store", store,
                             "--data-root", tmp_path / "data", "--device", "cpu")
    lines = err.strip().splitlines()
    assert code == 2 and "Traceback" not in err
    assert len(lines) == 1 and "dataset cifar100" in lines[0] and "runner.py data download cifar100" in lines[0], err
    assert not store.exists() and not (tmp_path / "data").exists()


# ---------------------------------------------------------------- store faults

def _finished(tmp_path, seed=0):
    store = Store(tmp_path / "store")
    cfg = C.resolve(tiny(seed=seed, recipe={"epochs": 1}))
    res = train_run(cfg, store, ExecOptions())
    return store, res["id"], res


def test_odd_lease_attempts_and_session_files_do_not_stop_the_queue(tmp_path, capsys):
    store = Store(tmp_path / "store")
    ids = []
    for seed, (name, doc) in enumerate([("lease.json", ["a", "list"]), ("lease.json", {"owner": {}, "expires": "soon"}),
                                        ("attempts.json", {"failed_attempts": "two"})]):
        cfg = C.resolve(tiny(seed=seed, recipe={"epochs": 1}))
        rid = C.run_id(cfg)
        store.ensure_config(rid, cfg)
        atomic_write_json(store.run_dir(rid) / name, doc)
        ids.append(rid)
    atomic_write_json(store.root / "queue" / "sessions.json", {"not": "a list"})
    code, out, err = run_cli(capsys, "status", "--store", store.root)
    assert code == 0 and "pending" in out and "Traceback" not in err
    assert run_worker(WorkerOptions(store=str(store.root), poll_seconds=0.1)) == {"done": 3}
    code, out, err = run_cli(capsys, "store", "check", "--store", store.root)
    assert code == 1 and "queue/sessions.json: of the wrong shape" in out
    code, out, _ = run_cli(capsys, "store", "check", "--store", store.root, "--repair")
    assert code == 0 and run_cli(capsys, "store", "check", "--store", store.root)[0] == 0


def _pending_run_with_a_damaged_config(tmp_path) -> tuple[Store, str, dict]:
    store = Store(tmp_path / "store")
    cfg = C.resolve(tiny(recipe={"epochs": 1}))
    rid = C.run_id(cfg)
    store.ensure_config(rid, cfg)
    (store.run_dir(rid) / "config.json").write_text("{garbage")
    return store, rid, cfg


def test_garbage_config_of_a_pending_run_is_failed_with_a_reason_not_pending_forever(tmp_path, capsys):
    store, rid, cfg = _pending_run_with_a_damaged_config(tmp_path)
    state = scan(store)[rid]
    assert state.state == "failed" and "config.json is unreadable" in state.reason
    code, out, _ = run_cli(capsys, "store", "check", "--store", store.root, "--repair")
    assert code == 0 and f"{rid}/config.json" in out
    store.ensure_config(rid, cfg)  # what reproduce does for the runs of its tables
    assert scan(store)[rid].state == "pending"


def test_a_worker_says_which_pending_run_has_a_damaged_config_and_exits_1(tmp_path, capsys):
    store, rid, _ = _pending_run_with_a_damaged_config(tmp_path)
    code, out, err = run_cli(capsys, "worker", "--store", store.root, "--device", "cpu")
    said = [line for line in out.splitlines() if rid in line]
    assert code == 1 and "Traceback" not in err, out + err
    assert len(said) == 1 and "config.json is unreadable" in said[0], out
    assert "`python runner.py store check --repair`" in said[0], out


def test_damaged_files_of_a_done_run_are_re_derived(tmp_path, capsys):
    store, rid, res = _finished(tmp_path)
    d = store.run_dir(rid)
    logits = torch.load(d / "test_logits.pt", weights_only=True)
    metrics = (d / "metrics.jsonl").read_text()
    (d / "test_logits.pt").write_bytes(b"garbage")
    (d / "metrics.jsonl").write_text("{cut")
    code, out, _ = run_cli(capsys, "store", "check", "--store", store.root)
    assert code == 1 and "test_logits.pt: missing or unreadable" in out and "metrics.jsonl: unreadable" in out
    assert (d / "test_logits.pt").read_bytes() == b"garbage"  # without --repair nothing is written
    code, out, _ = run_cli(capsys, "store", "check", "--store", store.root, "--repair")
    assert code == 0, out
    again = torch.load(d / "test_logits.pt", weights_only=True)
    assert torch.equal(again["logits"], logits["logits"]) and torch.equal(again["labels"], logits["labels"])
    assert (d / "metrics.jsonl").read_text() == metrics


def test_a_torn_last_metrics_line_is_damage_only_in_a_finished_run(tmp_path, capsys):
    """A kill in the middle of an epoch's append leaves an unfinished run's last line torn; the
    store reads past it and the resume rewrites the file, so `store check` finds nothing. A
    finished run's file was written whole at its end: the same torn line there is damage."""
    cfg = C.resolve(tiny(recipe={"epochs": 2}))
    store = Store(tmp_path / "store")
    stop_after_epoch(cfg, store, epoch=1)
    rid = C.run_id(cfg)
    torn = '{"epoch": 2, "train_lo'
    with open(store.run_dir(rid) / "metrics.jsonl", "a") as f:
        f.write(torn)
    assert len(store.metrics(rid)) == 1
    code, out, _ = run_cli(capsys, "store", "check", "--store", store.root)
    assert code == 0 and "metrics.jsonl" not in out, out

    done, done_id, _ = _finished(tmp_path / "done")
    with open(done.run_dir(done_id) / "metrics.jsonl", "a") as f:
        f.write(torn)
    code, out, _ = run_cli(capsys, "store", "check", "--store", done.root)
    assert code == 1 and f"{done_id}/metrics.jsonl: unreadable" in out, out


def test_result_without_metrics_and_a_lost_model_resume_to_the_same_result(tmp_path, capsys):
    store, rid, res = _finished(tmp_path)
    d = store.run_dir(rid)
    atomic_write_json(d / "result.json", {k: v for k, v in res.items() if k != "metrics"})
    assert scan(store)[rid].state == "pending"  # a damaged result is not a finished run
    (d / "model.pt").unlink()
    code, out, _ = run_cli(capsys, "store", "check", "--store", store.root, "--repair")
    assert code == 0 and "set aside" in out
    assert any(p.name.startswith("result.json.corrupt-") for p in d.iterdir())  # kept, not deleted
    assert run_worker(WorkerOptions(store=str(store.root), poll_seconds=0.1)) == {"done": 1}
    again = store.result(rid)
    assert (again["metrics"], again["weights_digest"]) == (res["metrics"], res["weights_digest"])


def test_a_finished_run_is_immutable(tmp_path):
    from benchmark.store.layout import WriteRefused

    store, rid, _ = _finished(tmp_path)
    before = snapshot(store.run_dir(rid))
    with pytest.raises(WriteRefused, match="finished"):
        store.write_run_file(rid, "checkpoint.pt", b"x", keep_previous="checkpoint.prev.pt")
    assert snapshot(store.run_dir(rid)) == before


# ---------------------------------------------------------------- a full disk

def test_full_disk_is_a_clean_line_and_the_runs_are_retried(tmp_path, capsys, monkeypatch):
    """With every write into the store failing with ENOSPC the worker neither crashes nor
    spins: each run is tried max_attempts times, nothing is marked failed (that write fails
    too), and once space is back the same command finishes them."""
    import benchmark.store.layout as store_module

    store = Store(tmp_path / "store")
    cfg = C.resolve(tiny(recipe={"epochs": 1}))
    rid = C.run_id(cfg)
    store.ensure_config(rid, cfg)
    real = store_module.write_temp

    def full(path, _data):  # write_temp's signature
        raise OSError(28, "No space left on device", str(path))
    monkeypatch.setattr(store_module, "write_temp", full)
    said = []
    tally = run_worker(WorkerOptions(store=str(store.root), poll_seconds=0.05, max_attempts=2), log=said.append)
    assert tally == {"retry": 2} and store.result(rid) is None
    assert any("No space left on device" in m for m in said)
    code, _, err = run_cli(capsys, "train", write_config(tmp_path, tiny(recipe={"epochs": 1})), "--store",
                           store.root, "--device", "cpu")
    assert_one_line(code, err, 1, "disk full", "run the same command again")
    monkeypatch.setattr(store_module, "write_temp", real)
    assert run_worker(WorkerOptions(store=str(store.root), poll_seconds=0.05)) == {"done": 1}
    assert json.loads((store.run_dir(rid) / "result.json").read_text())["status"] == "done"


def test_worker_preflight_refuses_a_pending_run_with_a_bad_teacher_file_and_writes_nothing(tmp_path, capsys):
    store = Store(tmp_path / "store")
    path = _teacher_file(tmp_path, "garbage")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    cfg = C.resolve(tiny(teacher={"checkpoint": str(path), "sha256": digest, "model": "resnet8"}, loss={"name": "kd"}))
    store.ensure_config(C.run_id(cfg), cfg)
    before = snapshot(tmp_path)
    code, _, err = run_cli(capsys, "worker", "--store", store.root, "--device", "cpu")
    assert_one_line(code, err, 2, f"teacher checkpoint {path}", "not a loadable checkpoint")
    assert snapshot(tmp_path) == before


def test_error_boundary_kinds_and_debug():
    import errno

    from benchmark.errors import BadInput

    assert cli.known_error(OSError(errno.ENOSPC, "No space left on device", "/s/x"))[0] == 1
    assert cli.known_error(OSError(errno.EROFS, "Read-only file system", "/s/x")) == (2, ["/s/x: Read-only file system"])
    assert cli.known_error(BadInput("f.yaml", "seed", "bad")) == (2, ["f.yaml: seed: bad"])
    assert cli.known_error(KeyError("a bug")) is None  # a bug keeps its traceback
    assert cli.known_error(OSError("no file named: a bug too")) is None
    with pytest.raises(BadInput):  # --debug: the traceback of a known kind too
        cli.main(["--debug", "models", "--num-classes", "0"])


def _store_leased_elsewhere(tmp_path, lease: dict) -> tuple[Store, str]:
    """A store whose one run is leased, live, by a process of another host."""
    import time

    store = Store(tmp_path / "store")
    cfg = C.resolve(tiny())
    rid = C.run_id(cfg)
    store.ensure_config(rid, cfg)
    atomic_write_json(store.run_dir(rid) / "lease.json", {**lease, "expires": time.time() + 600})
    return store, rid


def test_status_with_a_live_lease_of_the_wrong_shape(tmp_path, capsys):
    store, rid = _store_leased_elsewhere(tmp_path, {"owner": {"host": "elsewhere", "pid": 1}, "progress": ["odd"]})
    code, out, err = run_cli(capsys, "status", "--store", store.root)
    assert code == 0 and f"running {rid}" in out and "elsewhere:1" in out, out + err


def test_status_names_a_foreign_hosts_lease_without_a_worker_name_or_device_by_its_host(tmp_path, capsys):
    store, rid = _store_leased_elsewhere(tmp_path, {"owner": {"host": "gpu-node-9", "pid": 7}, "generation": 1})
    code, out, err = run_cli(capsys, "status", "--store", store.root)
    assert code == 0 and f"running {rid} on gpu-node-9: resnet8" in out and "None" not in out, out + err
    code, out, _ = run_cli(capsys, "status", "--store", store.root, "--json")
    assert code == 0 and json.loads(out)["running_runs"][0]["worker"] == "gpu-node-9"
