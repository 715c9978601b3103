"""Data-parallel training under ``torchrun`` (DDP): gloo on the CPU, nccl on CUDA.

``torchrun --nproc_per_node=N -m kdvision train CONFIG --out DIR`` starts N processes; each
reads RANK, WORLD_SIZE, LOCAL_RANK (and MASTER_ADDR/PORT) from its environment. Then:

* ``data.batch_size`` is per process (the global batch is N times larger);
* every rank trains on its shard of the training set (``DistributedSampler`` reseeded per
  epoch from the run seed; a task's own batch sampler is split batch by batch);
* the whole Method is wrapped in ``DistributedDataParallel``: teachers have no trainable
  parameters, so only the student and the connectors are synchronised (set
  ``train.distributed.find_unused_parameters`` for methods that skip parameters in a step);
* training losses and throughput are summed across ranks at the end of every epoch;
  validation and test run on rank 0 over the whole split and rank 0's result is broadcast,
  so every rank makes the same best-checkpoint decisions;
* only rank 0 writes (run directory, metrics, checkpoints, cache); ``--resume`` reads the
  checkpoint on every rank (the run directory must be visible to all of them);
* a rank that dies or hangs makes the others fail at their next collective, at the latest
  after ``train.distributed.timeout_s``; each then stops with one line naming the cause.
"""
from __future__ import annotations

import atexit
import hashlib
import os
import signal
import threading
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from kdvision.errors import UserError


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    timeout_s: float = 1800.0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = DistContext()
_context: DistContext | None = None


def launched_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_from_env(settings, device_name: str = "auto") -> DistContext:
    """Join the process group that torchrun describes in the environment (once per process).

    ``settings`` is ``train.distributed``; without torchrun (WORLD_SIZE unset or 1) this is
    a single process and nothing is initialised.
    """
    global _context
    if _context is not None:
        return _context
    world = launched_world_size()
    if world <= 1:
        return SINGLE
    try:
        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", os.environ["RANK"]))
    except KeyError as e:
        raise UserError(f"WORLD_SIZE is {world} but {e.args[0]} is not set; launch with torchrun") from None
    wants_cuda = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
    backend = settings.backend if settings.backend != "auto" else ("nccl" if wants_cuda else "gloo")
    if backend not in ("gloo", "nccl"):
        raise UserError(f"train.distributed.backend must be auto, gloo or nccl, got '{settings.backend}'")
    if backend == "nccl":
        if not torch.cuda.is_available():
            raise UserError("train.distributed.backend is nccl but no CUDA device is available (use gloo)")
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend, rank=rank, world_size=world, timeout=timedelta(seconds=settings.timeout_s))
    _context = DistContext(rank, world, local_rank, backend, settings.timeout_s)
    atexit.register(shutdown)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stopped_by_launcher)
    return _context


def _stopped_by_launcher(signum, frame) -> None:
    """torchrun sends SIGTERM to the surviving ranks when one rank fails."""
    ctx = _context or SINGLE
    raise UserError(f"rank {ctx.rank} of {ctx.world_size}: stopped by the launcher, usually because another rank "
                    f"failed (torchrun names it below); continue the run with --resume")


def shutdown() -> None:
    """Leave the process group together: a rank that tears down its gloo connections while the
    other is still using them makes that one abort ("terminate called without an active exception")."""
    global _context
    if dist.is_available() and dist.is_initialized():
        try:
            dist.barrier()
        except Exception:  # a rank already gone: nothing left to wait for
            pass
        dist.destroy_process_group()
    _context = None


def local_device(device: torch.device, ctx: DistContext) -> torch.device:
    """Under DDP on CUDA each process uses the GPU of its local rank."""
    if ctx.enabled and device.type == "cuda":
        return torch.device("cuda", ctx.local_rank)
    return device


# ---------------------------------------------------------------------- data
class ShardedBatchSampler:
    """Rank r of N takes batches r, r + N, ... of a batch sampler that every rank builds alike;
    all ranks get the same number of batches (the few left over are dropped)."""

    def __init__(self, batch_sampler, rank: int, world_size: int):
        self.batches = list(batch_sampler)
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        return len(self.batches) // self.world_size

    def __iter__(self):
        usable = len(self) * self.world_size
        return iter(self.batches[self.rank:usable:self.world_size])


def train_loader(dataset, batch_size: int, workers: int, seed: int, ctx: DistContext, make_batches=None,
                 pin_memory: bool = False, worker_init_fn=None) -> DataLoader:
    """This rank's shard of the training set for one epoch; ``seed`` is the epoch's seed.

    ``make_batches(batch_size, generator)`` is the data set's own batch sampler, if it has one.
    """
    worker_seeds = torch.Generator().manual_seed(seed + 7_919 * ctx.rank)  # different augmentations per rank
    if make_batches is not None:
        shared = make_batches(batch_size, torch.Generator().manual_seed(seed))
        return DataLoader(dataset, batch_sampler=ShardedBatchSampler(shared, ctx.rank, ctx.world_size),
                          num_workers=workers, worker_init_fn=worker_init_fn, generator=worker_seeds,
                          pin_memory=pin_memory)
    sampler = DistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=seed)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=len(sampler) > batch_size,
                      num_workers=workers, worker_init_fn=worker_init_fn, generator=worker_seeds,
                      pin_memory=pin_memory)


# ---------------------------------------------------------------------- model
def wrap(method: nn.Module, ctx: DistContext, device: torch.device, find_unused_parameters: bool = False):
    """The module the training step calls: the Method itself, or the Method inside DDP."""
    if not ctx.enabled:
        return method
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(method, device_ids=ids, find_unused_parameters=find_unused_parameters)


def parameter_digest(module: nn.Module, skip_prefix: str = "teachers.") -> str:
    h = hashlib.sha256()
    for name, p in module.named_parameters():
        if not name.startswith(skip_prefix):
            h.update(name.encode())
            h.update(p.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def replica_digests(module: nn.Module, ctx: DistContext) -> list[str]:
    """Every rank's digest of its trainable parameters (equal when DDP kept the replicas in step)."""
    mine = parameter_digest(module)
    if not ctx.enabled:
        return [mine]
    out: list = [None] * ctx.world_size
    dist.all_gather_object(out, mine)
    return out


# ---------------------------------------------------------------------- collectives
def broadcast_object(obj, ctx: DistContext):
    """Rank 0's ``obj`` on every rank (``obj`` itself without DDP)."""
    if not ctx.enabled:
        return obj
    box = [obj if ctx.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def reduce_epoch(sums: dict, images_per_s: float, ctx: DistContext) -> float:
    """Sum the running loss sums and counts (``{name: [sum, count]}``) and the throughput over ranks."""
    if not ctx.enabled:
        return images_per_s
    names = sorted(sums)
    device = torch.device("cuda", ctx.local_rank) if ctx.backend == "nccl" else torch.device("cpu")
    flat = torch.tensor([v for n in names for v in sums[n]] + [images_per_s], dtype=torch.float64, device=device)
    dist.all_reduce(flat)
    values = flat.cpu().tolist()
    for i, n in enumerate(names):
        sums[n][0], sums[n][1] = values[2 * i], int(values[2 * i + 1])
    return values[-1]


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


#: what a collective raises when another rank has died, closed its connection or timed out
LOST_RANK_ERRORS = tuple(e for e in (getattr(dist, "DistError", None), RuntimeError) if e is not None)
LOST_RANK_HINTS = ("gloo", "nccl", "connection", "timed out", "timeout", "peer", "socket", "broken pipe",
                   "process group", "store")


def raise_if_lost_rank(error: BaseException, ctx: DistContext) -> None:
    """Turn a failed collective into one clear line; any other error passes through unchanged."""
    if not ctx.enabled or isinstance(error, UserError) or not isinstance(error, LOST_RANK_ERRORS):
        return
    text = str(error).strip()
    first = text.splitlines()[0][:200] if text else type(error).__name__
    if not (isinstance(error, getattr(dist, "DistError", ())) or any(h in text.lower() for h in LOST_RANK_HINTS)):
        return
    raise UserError(f"rank {ctx.rank} of {ctx.world_size}: lost contact with the other ranks ({first}); another "
                    f"rank probably died (see its error above) or hung past train.distributed.timeout_s="
                    f"{ctx.timeout_s:g}s. The job stops; continue it with --resume") from None
