"""Several training processes (data parallel, as PyTorch DDP): one potential, N ranks.

Every rank holds the same model. Each global batch (the one-process batch: the order of
epoch k comes from ``np.random.default_rng([seed, k])``) is split into disjoint shards,
``batch[rank::world]``; each rank computes its shard's part of the loss with the
normalisers (summed frame weights, atom weights) of the whole global batch, so the sum
of the ranks' gradients, all-reduced after the backward pass, is the one-process
gradient of that batch. The optimiser, gradient clipping and EMA then take the same step
on every rank. Validation, the LR scheduler's input, early stopping and the wall-clock
budget are decided on rank 0 and broadcast; only rank 0 writes files.

Two ways in:

- ``potlab train --nproc N CONFIG.yaml``: :func:`launch` starts N local processes
  (``gloo`` on the CPU, ``nccl`` on GPUs, one GPU per process);
- ``torchrun --nproc_per_node N -m potlab.cli train CONFIG.yaml`` (and ``srun torchrun``
  on a cluster): the trainer finds ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and
  ``MASTER_ADDR``/``MASTER_PORT`` in the environment and joins the group itself.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from potlab.devices import resolve_device
from potlab.errors import InputError
from potlab.train.config import ConfigError, TrainConfig

log = logging.getLogger("potlab.train")


@dataclass(frozen=True)
class Ranks:
    """This process's place among the training processes."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def shard(self, idx: Sequence[int]) -> list[int]:
        """This rank's disjoint part of a global batch (``idx[rank::world]``)."""
        return list(idx[self.rank :: self.world])


def env_world_size() -> int:
    """``WORLD_SIZE`` as torchrun (or ``srun torchrun``) sets it; 1 when unset."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ConfigError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} in the environment is "
                          f"not an integer") from None


def is_main_process() -> bool:
    """True in a single process and on rank 0 of several (what prints, what writes)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0") or 0) == 0


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def training_device(name: str, local_rank: int = 0, world: int = 1) -> torch.device:
    """The device of ``training.device`` for the process of local rank ``local_rank``: with
    several processes ``cuda``/``auto`` means one GPU per local rank."""
    if world > 1 and name.startswith("cuda:"):
        raise ConfigError(f"training.device: {name!r} names one GPU, but {world} processes "
                          f"train: use 'cuda' or 'auto' (each process takes the GPU of its "
                          f"local rank; choose GPUs with CUDA_VISIBLE_DEVICES)")
    device = resolve_device(name, "training.device")
    if device.type == "cuda" and world > 1:
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"training.device: local rank {local_rank} has no GPU "
                              f"(this node has {torch.cuda.device_count()})")
        device = torch.device("cuda", local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


@contextlib.contextmanager
def process_group(device_name: str) -> Iterator[tuple[Ranks, torch.device]]:
    """This process's :class:`Ranks` and device. Joins the group torchrun describes in the
    environment (and leaves it at the end) unless a group is running already (as under
    :func:`launch`); a single process needs no group."""
    own = False
    if dist.is_available() and dist.is_initialized():
        world, rank = dist.get_world_size(), dist.get_rank()
        local = int(os.environ.get("LOCAL_RANK", rank))
        device = training_device(device_name, local, world)
    elif env_world_size() > 1:
        world, rank = env_world_size(), int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        device = training_device(device_name, local, world)
        dist.init_process_group(backend_for(device), init_method="env://",
                                rank=rank, world_size=world)
        own = True
    else:
        world, rank, local = 1, 0, 0
        device = training_device(device_name)
    try:
        yield Ranks(rank, world, local), device
    finally:
        if own:
            dist.destroy_process_group()


# ---- collectives (no-ops in one process) ---------------------------------------------

def broadcast_object(obj: Any, ranks: Ranks) -> Any:
    """Rank 0's ``obj`` on every rank (pickled; small things: metrics, a split, a state)."""
    if not ranks.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_sum(t: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """The sum over ranks of ``t`` (in place, and returned)."""
    if ranks.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def rank0_flag(flag: bool, ranks: Ranks, device: torch.device) -> bool:
    """Rank 0's ``flag`` on every rank (the wall-clock budget is rank 0's clock)."""
    if not ranks.distributed:
        return flag
    t = torch.tensor([1.0 if (flag and ranks.main) else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return bool(t.item() > 0)


def rank0_value(value: float, ranks: Ranks, device: torch.device) -> float:
    """Rank 0's ``value`` on every rank (the budget spent, on rank 0's clock)."""
    if not ranks.distributed:
        return value
    t = torch.tensor([value if ranks.main else 0.0], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item())


def all_reduce_gradients(params: Sequence[torch.nn.Parameter], ranks: Ranks) -> None:
    """Sum every parameter's gradient over the ranks, in one flat buffer. A parameter no
    rank has a gradient for keeps ``grad = None`` (as in one process, so that AdamW's
    decay skips it alike); a rank with an empty shard contributes zeros."""
    if not ranks.distributed:
        return
    params = [p for p in params if p.requires_grad]
    if not params:
        return
    ref = params[0]
    parts = [p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel(), dtype=p.dtype,
                                                                       device=p.device)
             for p in params]
    has = torch.tensor([p.grad is not None for p in params], dtype=ref.dtype, device=ref.device)
    flat = torch.cat([*(x.to(ref.dtype) for x in parts), has])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    grads = flat[: flat.numel() - len(params)]
    for k, p in enumerate(params):
        n = p.numel()
        if flat[flat.numel() - len(params) + k] > 0:
            g = grads[offset : offset + n].view_as(p).to(p.dtype)
            if p.grad is None:
                p.grad = g.clone()
            else:
                p.grad.copy_(g)
        offset += n


# ---- potlab train --nproc N ------------------------------------------------------------

def _die_with_parent() -> None:
    """Linux: this worker gets SIGKILL when the launching process dies (killed with -9, its
    terminal closed), so no orphan keeps training and writing the run directory."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _worker(raw: dict, source: str, rank: int, world: int, init_method: str, backend: str,
            threads: int, log_level: int, parent: int, report_dir: str) -> None:
    """One rank of :func:`launch` (a module-level function: it runs in a spawned process)."""
    _die_with_parent()
    if os.getppid() != parent:  # the launcher died before this process got here
        os._exit(1)
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                       "LOCAL_WORLD_SIZE": str(world)})
    logging.basicConfig(level=log_level, format=f"%(levelname)s rank {rank} %(name)s: %(message)s")
    status, message = "ok", ""
    try:
        from potlab.train.config import parse_config
        from potlab.train.trainer import Trainer

        torch.set_num_threads(threads)
        dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=world)
        try:
            Trainer(parse_config(raw, source=source)).run()
        finally:
            dist.destroy_process_group()
    except (InputError, FileNotFoundError) as err:  # bad input: one line, as the CLI says it
        status, message = "input", str(err)
    except OSError as err:
        status, message = ("input", f"{err.filename}: {err.strerror or err}") if err.filename \
            else ("error", traceback.format_exc())
    except BaseException:  # noqa: BLE001 - reported to the launcher with its traceback
        status, message = "error", traceback.format_exc()
    from potlab.atomic import write_text_atomic

    write_text_atomic(json.dumps({"status": status, "message": message}),
                      Path(report_dir) / f"rank{rank}.json")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0 if status == "ok" else 2 if status == "input" else 1)


class WorkerFailed(RuntimeError):
    """A training process failed with a bug (its traceback is in the message)."""


def launch(cfg: TrainConfig, nproc: int, source: str = "<config>"):
    """Train ``cfg`` with ``nproc`` local processes and return rank 0's
    :class:`~potlab.train.trainer.TrainResult`.

    Each process gets ``training.threads`` threads (default: CPUs // nproc). Bad input in
    any process is raised here as one :class:`InputError` (rank 0's message first); if a
    process dies, the others are stopped.
    """
    import multiprocessing as mp
    from multiprocessing.connection import wait

    from potlab.train.checkpoint import prepare_run_directory
    from potlab.train.trainer import TrainResult

    if nproc < 1:
        raise ConfigError(f"--nproc {nproc}: needs at least 1 process")
    if cfg.committee is not None:
        raise ConfigError("--nproc trains one potential with several processes; a committee "
                          "trains its members side by side instead (committee.workers)")
    if env_world_size() > 1:
        raise ConfigError("--nproc inside torchrun: torchrun starts the processes already "
                          "(run `potlab train CONFIG.yaml` under it)")
    device = resolve_device(cfg.training.device, "training.device")
    if cfg.training.device.startswith("cuda:") and nproc > 1:
        training_device(cfg.training.device, 0, nproc)  # raises: one GPU named for N processes
    if device.type == "cuda" and nproc > torch.cuda.device_count():
        raise ConfigError(f"--nproc {nproc}: training.device is a GPU, one per process, and "
                          f"this machine has {torch.cuda.device_count()}")
    out = Path(cfg.out)
    prepare_run_directory(out)
    threads = cfg.training.threads or max(1, (os.cpu_count() or 1) // nproc)
    ctx = mp.get_context("spawn")
    store = tempfile.mkdtemp(prefix="potlab-ddp-")
    raw = cfg.model_dump(mode="json")
    level = logging.getLogger().getEffectiveLevel()
    procs = [ctx.Process(target=_worker, name=f"potlab-train-rank{r}",
                         args=(raw, source, r, nproc, f"file://{store}/rendezvous",
                               backend_for(device), threads, level, os.getpid(), store))
             for r in range(nproc)]
    try:
        for p in procs:
            p.start()
        alive = list(procs)
        while alive:
            wait([p.sentinel for p in alive])
            for p in list(alive):
                if p.exitcode is not None:
                    alive.remove(p)
                    if p.exitcode != 0:  # the others would wait for it forever
                        for q in alive:
                            q.terminate()
        reports = {}
        for r in range(nproc):
            path = Path(store) / f"rank{r}.json"
            if path.exists():
                rep = json.loads(path.read_text())
                reports[r] = (rep["status"], rep["message"])
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join()
        shutil.rmtree(store, ignore_errors=True)
    failed = {r: v for r, v in reports.items() if v[0] != "ok"}
    for r, (status, message) in sorted(failed.items()):
        if status == "input":
            raise InputError(message)
    for r, (_, message) in sorted(failed.items()):
        raise WorkerFailed(f"training process {r} of {nproc} failed:\n{message}")
    lost = [p for p in procs if p.exitcode != 0]
    if lost:
        raise WorkerFailed("training processes ended without a report: "
                           + ", ".join(f"{p.name} (exit {p.exitcode})" for p in lost))
    summary = json.loads((out / "summary.json").read_text())
    return TrainResult(out, summary["epochs"], summary["best_epoch"], summary["best_valid_loss"],
                       summary["stop_reason"], summary)


__all__ = ["Ranks", "WorkerFailed", "all_reduce_gradients", "all_reduce_sum", "backend_for",
           "broadcast_object", "env_world_size", "is_main_process", "launch", "process_group",
           "rank0_flag", "training_device"]
