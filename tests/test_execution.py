"""How a run is executed (benchmark/engine/execution.py): what its record says ran."""

from benchmark.engine.accel import Accel
from benchmark.engine.data.loader import loader_workers
from benchmark.engine.execution import ExecOptions


def test_the_record_is_the_device_the_loader_workers_and_the_flags_as_applied():
    rec = ExecOptions(num_workers=3).record()
    workers, source = loader_workers(3)
    assert rec["device"] == "cpu" and rec["num_workers"] == workers == 3
    assert all(rec[k] == v for k, v in source.items())
    assert ExecOptions(accel=Accel(amp="bf16")).record()["amp"] == "bf16"
    assert "on_epoch" not in rec and "tensorboard" not in rec  # hooks and outputs are not what ran
