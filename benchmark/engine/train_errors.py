"""The two ways a run leaves training early, shared by the trainer's parts (train.py re-exports them)."""


class RunFailed(Exception):
    """The run cannot go on (non-finite loss, missing teacher): recorded as status failed."""


class StopRun(Exception):
    """Raised by a progress hook to drop one run from training (e.g. its lease was lost)."""
