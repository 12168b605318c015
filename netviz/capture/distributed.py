"""Recording statistics of a distributed job (DDP, FSDP) with one collective per step.

Every rank computes the raw statistics of its own part of the job (its local
batch, its shard of each parameter) exactly as a single process would. When a
recorded step closes, the monitor packs them into one 1-D buffer and
:class:`StepGather` collects the buffers of all ranks with **one**
``all_gather`` (nothing is communicated inside hooks or on steps that are not
recorded). Rank 0 of the group then combines the ranks on the host with each
probe's :meth:`~netviz.Probe.merge`: activation moments with Chan's parallel
update (the statistics of the global batch), squared norms of parameter shards
summed (the norm of the full parameter), replicated values (DDP's averaged
gradients) taken once.

Wire format
-----------
All ranks must send tensors of the same length: a size mismatch inside an
all-gather crashes gloo (``SIGABRT``) and leaves NCCL undefined. Each rank
therefore sends a fixed-size ``float64`` vector

.. code-block:: text

    [MAGIC, step, n, crc32(layout), adler32(layout), payload (n values), 0 ... 0]
    |<-------------------------- 5 + capacity ---------------------------->|

where ``layout`` names every entry of the payload (probe, module, call,
sharded) and ``capacity`` is agreed without talking: it starts at
:data:`INITIAL_CAPACITY` on every rank and only grows after a gather in which
some rank announced ``n > capacity`` (then every rank saw that header, grows to
the same power of two and the step is gathered again; this happens at most a
few times in a run, on steps whose buffer outgrows all previous ones). After
the gather every rank checks every header, so every rank raises the same
:class:`DistributedRecordError` when ranks disagree (different step counters,
different module calls, different ``watch`` arguments) instead of merging
values that do not belong together.

Process group
-------------
By default the monitor talks over a dedicated gloo group created by
:func:`watch` on all ranks of the default group: statistics (a few kB) travel
over TCP, never interleave with the training's own collectives (DDP's bucket
all-reduces, FSDP's all-gathers) and need no extra NCCL communicator. A group
given as ``process_group=`` is used as it is (its backend decides the device of
the buffer).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import torch
from torch import nn

from netviz._compat import process_group_timeout
from netviz.errors import NetvizRuntimeError, NetvizTypeError, NetvizValueError

__all__ = [
    "HEADER",
    "INITIAL_CAPACITY",
    "DistributedRecordError",
    "StepGather",
    "make_gather",
]

#: Fields in front of every rank's payload.
HEADER: tuple[str, ...] = ("magic", "step", "n", "crc32", "adler32")
_H = len(HEADER)
#: Marks a netviz statistics buffer (a foreign collective paired with ours shows up as a bad magic).
_MAGIC = 7_061_329.0
#: Payload values every rank can send before the first growth (32 kB in float64).
INITIAL_CAPACITY = 4096


class DistributedRecordError(NetvizRuntimeError):
    """Ranks could not agree on a recorded step (raised identically on every rank)."""


def _bucket(n: int) -> int:
    """Smallest power of two >= ``n`` and >= :data:`INITIAL_CAPACITY`."""
    cap = INITIAL_CAPACITY
    while cap < n:
        cap *= 2
    return cap


def layout_key(layout: Sequence[tuple[Any, ...]]) -> tuple[int, int]:
    """Two 32-bit checksums of a step's layout; equal on ranks whose entries line up.

    Python's ``hash`` of strings differs between processes, so checksums of the
    layout's text are used.

    >>> layout_key([(0, "fc", 0, False)]) == layout_key([(0, "fc", 0, False)])
    True
    >>> layout_key([(0, "fc", 0, False)]) == layout_key([(0, "fc", 1, False)])
    False
    """
    text = "\x1e".join("\x1f".join(map(str, item)) for item in layout).encode()
    return zlib.crc32(text), zlib.adler32(text)


class StepGather:
    """Collects each recorded step's buffer from all ranks of a process group.

    Parameters
    ----------
    group
        The process group (every rank of it must watch the same model with the
        same arguments and close the same steps).
    per_rank
        Keep each rank's statistics (a ``rank`` column) instead of merging them.
    all_ranks
        Keep the records on every rank, not only on rank 0 of ``group``.

    Attributes
    ----------
    rank, world_size
        This process's rank in ``group`` and the group's size.
    collectives
        Number of all-gathers issued so far (one per recorded step, plus one per
        capacity growth).
    """

    def __init__(self, group: Any, *, per_rank: bool = False, all_ranks: bool = False):
        import torch.distributed as dist

        self.group = group
        self.per_rank = per_rank
        self.all_ranks = all_ranks
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)
        self.capacity = INITIAL_CAPACITY
        self.collectives = 0
        backend = str(dist.get_backend(group)).lower()
        self._backend = backend
        if backend in ("gloo", "mpi"):
            self._device: torch.device | None = torch.device("cpu")
        elif backend == "nccl":
            self._device = torch.device("cuda", torch.cuda.current_device())
        else:  # e.g. "cpu:gloo,cuda:nccl": the tensor's device picks the backend
            self._device = None

    @property
    def keeps_records(self) -> bool:
        """Whether this rank stores the records (rank 0 of the group, or all with ``all_ranks``)."""
        return self.all_ranks or self.rank == 0

    def gather_step(
        self, buffer: torch.Tensor, step: int, layout: Sequence[tuple[Any, ...]]
    ) -> torch.Tensor:
        """All ranks' payloads as a ``(ranks, len)`` float64 host tensor.

        Every rank of the group must call this for the same steps in the same
        order. Raises :class:`DistributedRecordError` on every rank when the
        ranks' steps, lengths or layouts differ.
        """
        device = self._device or buffer.device
        payload = buffer.reshape(-1).to(device=device, dtype=torch.float64)
        n = payload.numel()
        crc, adler = layout_key(layout)
        header = torch.tensor([_MAGIC, step, n, crc, adler], dtype=torch.float64, device=device)
        while True:
            cap = self.capacity
            send = torch.zeros(_H + cap, dtype=torch.float64, device=device)
            send[:_H] = header
            send[_H : _H + min(n, cap)] = payload[:cap]
            out = self._all_gather(send, step)
            # One host copy per recorded step: every rank reads every header.
            out = out.to("cpu")
            heads = out[:, :_H]
            self._check_magic(heads, step)
            need = int(heads[:, 2].max())
            if need <= cap:
                break
            # Every rank saw the same headers and grows to the same capacity.
            self.capacity = _bucket(need)
        self._check_agree(heads, step)
        return out[:, _H : _H + n]

    # ---------------------------------------------------------------- helpers
    def _all_gather(self, send: torch.Tensor, step: int) -> torch.Tensor:
        import torch.distributed as dist

        # all_gather_single replaces all_gather_into_tensor (deprecated in 2.13).
        fn = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
        # A flat output: gloo accepts only the concatenated form.
        out = torch.empty(self.world_size * send.numel(), dtype=send.dtype, device=send.device)
        self.collectives += 1
        try:
            fn(out, send, group=self.group)
        except Exception as err:
            raise DistributedRecordError(
                f"netviz: rank {self.rank} could not gather the statistics of step {step} "
                f"from the {self.world_size} ranks of its process group ({type(err).__name__}: "
                f"{str(err)[:300]}). Every rank must call netviz.watch(...) with the same "
                "arguments and close the same steps (mon.step() or optimizer=); to record "
                "on one rank only, pass distributed=False."
            ) from err
        return out.view(self.world_size, send.numel())

    def _check_magic(self, heads: torch.Tensor, step: int) -> None:
        bad = [r for r in range(self.world_size) if heads[r, 0].item() != _MAGIC]
        if bad:
            raise DistributedRecordError(
                f"netviz: at step {step} rank(s) {bad} sent something other than netviz "
                "statistics: another collective ran on the monitor's process group at the "
                "same time. Use a process group reserved for the monitor "
                "(process_group=None creates one)."
            )

    def _check_agree(self, heads: torch.Tensor, step: int) -> None:
        rows = [tuple(int(v) for v in heads[r, 1:].tolist()) for r in range(self.world_size)]
        if all(row == rows[0] for row in rows):
            return
        steps = [r[0] for r in rows]
        if len(set(steps)) > 1:
            why = f"the ranks are at different steps {steps} (different `every` or step() counts)"
        elif len({r[1] for r in rows}) > 1:
            why = (
                f"the ranks recorded different numbers of values {[r[1] for r in rows]} "
                "(modules called a different number of times, or different probes/modules)"
            )
        else:
            why = (
                "the ranks recorded the same number of values for different "
                "(probe, module, call) entries"
            )
        raise DistributedRecordError(
            f"netviz: statistics of step {step} cannot be merged across ranks: {why}. Give "
            "every rank the same watch(...) arguments and the same calls per step; to keep "
            "each rank's statistics separately pass distributed=False. (FSDP1 wrappers are "
            "not supported: use torch.distributed.fsdp.fully_shard.)"
        )


def _default_timeout() -> timedelta | None:
    """Timeout of the default process group (``init_process_group(timeout=...)``), if readable."""
    return process_group_timeout()


def _fsdp1_wrapper(model: nn.Module) -> str | None:
    try:
        from torch.distributed.fsdp import FullyShardedDataParallel
    except ImportError:  # pragma: no cover - builds without distributed
        return None
    for name, module in model.named_modules():
        if isinstance(module, FullyShardedDataParallel):
            return name or "<root>"
    return None


def make_gather(
    model: nn.Module,
    distributed: bool | str | None,
    per_rank: bool,
    process_group: Any,
    all_ranks: bool = False,
    timeout: timedelta | None = None,
) -> StepGather | None:
    """Resolve ``watch``'s distributed arguments to a :class:`StepGather` or ``None``.

    ``distributed=None`` or ``"auto"``: on when ``torch.distributed`` is
    initialised and the group has more than one rank. ``True``: on (an error
    if ``torch.distributed`` is not initialised). ``False``: each process
    records its own statistics, no collective.
    """
    if distributed is None:
        distributed = "auto"
    if not (isinstance(distributed, bool) or distributed == "auto"):
        raise NetvizValueError(
            f"`distributed` must be None, 'auto', True or False, got {distributed!r}"
        )
    if not isinstance(per_rank, bool):
        raise NetvizTypeError(f"`per_rank` must be a bool, got {type(per_rank).__name__}")
    if not isinstance(all_ranks, bool):
        raise NetvizTypeError(f"`all_ranks` must be a bool, got {type(all_ranks).__name__}")
    import torch.distributed as dist

    ready = dist.is_available() and dist.is_initialized()
    if distributed is True and not ready:
        raise NetvizRuntimeError(
            "`distributed=True` but torch.distributed is not initialised: call "
            "torch.distributed.init_process_group(...) before netviz.watch (or pass "
            "distributed='auto')"
        )
    if distributed == "auto":
        size = dist.get_world_size(process_group) if ready else 1
        distributed = ready and size > 1
    if not distributed:
        if per_rank:
            raise NetvizValueError(
                "`per_rank=True` needs a distributed run (distributed='auto' or True)"
            )
        if process_group is not None:
            raise NetvizValueError("`process_group` was given but distributed recording is off")
        return None
    wrapper = _fsdp1_wrapper(model)
    if wrapper is not None:
        raise NotImplementedError(
            f"netviz.watch does not support FSDP1 (FullyShardedDataParallel at {wrapper!r}): "
            "its flattened parameter shards give wrong norms. Use FSDP2 "
            "(torch.distributed.fsdp.fully_shard), or pass distributed=False for rank-local "
            "statistics."
        )
    if process_group is None:
        # A group of our own: never interleaves with training collectives, and
        # waits no longer than the default group would (its timeout, if known).
        timeout = timeout or _default_timeout()
        try:
            process_group = dist.new_group(backend="gloo", timeout=timeout)
        except Exception as err:
            raise DistributedRecordError(
                f"netviz.watch on rank {dist.get_rank()} could not create its process group "
                f"({type(err).__name__}: {str(err)[:300]}). Every rank must call "
                "netviz.watch(...) (it creates a gloo group over all ranks); to record on "
                "some ranks only, pass distributed=False."
            ) from err
    return StepGather(process_group, per_rank=per_rank, all_ranks=all_ranks)
