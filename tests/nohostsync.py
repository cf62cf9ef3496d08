"""A dispatch mode that fails on every op by which the host reads a value computed on the device
(a host sync on CUDA; on the CPU the same ops run, so a CPU test catches them)."""

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten

# .item(), bool(t), int(t), `if t:`; torch.nonzero; t[mask] as masked_select; bool(t) of one element.
READS = {aten._local_scalar_dense, aten.nonzero, aten.masked_select, aten.is_nonzero}
# t[mask] and t[mask] = v reach the mode as an index op whose index is boolean; its kernel then
# calls nonzero below the mode, where the mode does not see it.
INDEXING = {aten.index, aten.index_put, aten.index_put_, aten._index_put_impl_}


class HostSync(AssertionError):
    pass


def _boolean_index(args) -> bool:
    indices = args[1] if len(args) > 1 else ()
    return any(t is not None and t.dtype in (torch.bool, torch.uint8) for t in indices)


class NoHostSync(TorchDispatchMode):
    """``with NoHostSync(): step()`` raises HostSync at the first op that reads a device value on
    the host, naming it. Backward passes run inside the mode too (autograd keeps it)."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        packet = func.overloadpacket
        if packet in READS or (packet in INDEXING and _boolean_index(args)):
            raise HostSync(f"host sync: {func}")
        return func(*args, **(kwargs or {}))
