"""A run's cost: its config turned into the cost model's workload (FLOPs and layers of its networks,
images, batches, epochs, whether a CPU loader decodes files) and its hours under the cost settings
(a calibration, a device kind, a numerics policy, loader workers). The rates are costmodel.py's."""

from __future__ import annotations

from dataclasses import dataclass

from ..engine.methods import pretraining_epochs
from ..errors import BadInput
from . import costmodel
from .flops import forward_flops  # cached per model, classes and input side

# The cost model (benchmark/catalog/costmodel.py): a run's hours are the largest of compute, data and
# per-step overhead, from the calibration of a device kind (H100 by default), the numerics policy
# and the loader's workers; a store's measured throughput (benchmark/runs/throughput.py) stands for
# compute and overhead where there is one.
DEFAULT_RATE_SOURCE = (f"default calibration {costmodel.DEFAULT_DEVICE} (benchmark/catalog/calibrations.json), "
                       f"policy {costmodel.DEFAULT_POLICY}, {costmodel.DEFAULT_LOADER_WORKERS} loader workers; "
                       "no CUDA measurement in the store")


def sizes(cfg: dict) -> tuple[int, int, int]:
    """(input side, train images, test images) of a config's data."""
    from ..engine.data import get_spec

    spec = get_spec(cfg["dataset"])
    if cfg["data"]["source"] == "synthetic":
        syn = cfg["data"]["synthetic"]
        side = syn["image_size"] or spec.synthetic_size
        per_train = syn["per_class"] or spec.synthetic_train_per_class
        per_test = syn["test_per_class"] or spec.synthetic_test_per_class
        return side, per_train * spec.num_classes, per_test * spec.num_classes
    return spec.image_size, spec.train_size, spec.test_size


@dataclass(frozen=True)
class CostSettings:
    """What the cost model is asked for: a calibration (costmodel.Calibration), a device kind of
    it, a numerics policy (reproducible | strict | fast) and the loader's CPU workers."""
    calibration: costmodel.Calibration | None = None   # None: the package's defaults
    device_kind: str = costmodel.DEFAULT_DEVICE
    numerics: str = costmodel.DEFAULT_POLICY
    loader_workers: int = costmodel.DEFAULT_LOADER_WORKERS

    def check(self) -> None:
        """A bad device kind, policy or worker count as a BadInput naming the option."""
        self.cal().device(self.device_kind)
        costmodel.precision_of(self.numerics)
        if self.loader_workers < 1:
            raise BadInput("--loader-workers", None, f"must be at least 1, got {self.loader_workers}")

    def cal(self) -> costmodel.Calibration:
        return self.calibration or costmodel.read_calibration()

    def describe(self) -> dict:
        return costmodel.describe(self.cal(), self.device_kind, self.numerics, self.loader_workers)


def workload(cfg: dict, teacher_cfg: dict | None) -> costmodel.Workload:
    """A run config in the cost model's units: FLOPs and layers of its networks, images, batches,
    epochs, and whether its images are files a CPU loader decodes. A checkpoint teacher (no config)
    is costed as the student (a lower bound is worse than a guess)."""
    from ..engine.data import get_spec
    from .flops import layer_count

    spec = get_spec(cfg["dataset"])
    classes = spec.num_classes
    side, n_train, n_test = sizes(cfg)
    student = costmodel.Net(forward_flops(cfg["model"], classes, side), layer_count(cfg["model"], classes))
    teacher = None
    if cfg["teacher"] is not None:
        tmodel = teacher_cfg["model"] if teacher_cfg else cfg["teacher"].get("model", cfg["model"])
        teacher = costmodel.Net(forward_flops(tmodel, classes, side), layer_count(tmodel, classes))
    recipe = cfg["recipe"]
    batch = recipe["batch_size"]
    if recipe.get("steps_per_epoch"):  # the cap of the suite's own short runs
        n_train = min(n_train, recipe["steps_per_epoch"] * batch)
    init_epochs = pretraining_epochs(cfg["loss"])
    return costmodel.Workload(
        student=student, teacher=teacher, train_images=n_train, test_images=n_test, batch=batch,
        eval_batch=recipe.get("eval_batch_size") or batch, epochs=recipe["epochs"],
        from_files=spec.kind == "folder" and cfg["data"]["source"] != "synthetic",
        extra_train_epochs=init_epochs, final_train_eval=bool(recipe["final_train_eval"]))


def estimate_run(cfg: dict, teacher_cfg: dict | None, flops_per_s: float | None = None,
                 settings: CostSettings | None = None, overhead_divisor: float = 1.0) -> costmodel.Estimate:
    """The run's hours and the bound they hit (benchmark/catalog/costmodel.py), under ``settings`` (default:
    the H100 calibration, the reproducible policy, 16 loader workers); a measured ``flops_per_s``
    stands for compute and overhead; ``overhead_divisor``: packing and fusion (catalog/scaling.py)."""
    return estimate_workload(workload(cfg, teacher_cfg), flops_per_s, settings, overhead_divisor)


def estimate_workload(work: costmodel.Workload, flops_per_s: float | None = None, settings: CostSettings | None = None,
                      overhead_divisor: float = 1.0) -> costmodel.Estimate:
    """estimate_run of a workload already built (catalog/scaling.py costs one run four ways)."""
    settings = settings or CostSettings()
    return costmodel.estimate(work, settings.cal(), settings.device_kind, settings.numerics,
                              settings.loader_workers, measured_flops_per_s=flops_per_s,
                              overhead_divisor=overhead_divisor)


def estimate_gpu_hours(cfg: dict, teacher_cfg: dict | None, flops_per_s: float | None = None,
                       settings: CostSettings | None = None) -> float:
    """The run's hours (estimate_run)."""
    return estimate_run(cfg, teacher_cfg, flops_per_s, settings).hours


def estimate_flops(cfg: dict, teacher_cfg: dict | None) -> float:
    """epochs x (train images x (3 x student + teacher forward) + test images x student),
    plus a pre-training stage's epochs x train images x (3 x student + teacher forward).

    Backward costs about twice the forward, hence 3x for the student; the teacher only forwards.
    A checkpoint teacher (no config) is costed as the student (a lower bound is worse than a guess)."""
    from ..engine.data import get_spec

    classes = get_spec(cfg["dataset"]).num_classes
    side, n_train, n_test = sizes(cfg)
    student = forward_flops(cfg["model"], classes, side)
    if cfg["teacher"] is None:
        teacher = 0.0
    else:
        tmodel = teacher_cfg["model"] if teacher_cfg else cfg["teacher"].get("model", cfg["model"])
        teacher = forward_flops(tmodel, classes, side)
    recipe = cfg["recipe"]
    per_epoch = n_train * (3 * student + teacher) + n_test * student
    total = recipe["epochs"] * per_epoch + (n_train * student if recipe["final_train_eval"] else 0)
    # A pre-training stage (AB, FT, FSP) costs about a training epoch without the evaluation.
    init_epochs = pretraining_epochs(cfg["loss"])
    return total + init_epochs * n_train * (3 * student + teacher)
