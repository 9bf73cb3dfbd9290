# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Distributed runs (``--launcher pytorch``, torchrun) on machines without a
GPU.

MMEngine 0.10.7 cannot run them as shipped: ``init_dist('pytorch')`` calls
``torch.cuda.set_device(LOCAL_RANK)`` before starting the process group, and
``Runner.wrap_model`` wraps the model in DDP with
``device_ids=[LOCAL_RANK]``, which DDP refuses for a CPU module. Both fail on
a CPU-only machine. :func:`setup_cpu_distributed` starts the process group
itself (the Runner then sees it running and skips its own start) and sets
``model_wrapper_cfg.device_ids=None``. With a GPU it does nothing.
"""
import datetime
import gc
import logging

import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.device import (
    is_cuda_available,
    is_mlu_available,
    is_musa_available,
    is_npu_available,
)
from mmengine.logging import print_log
from mmengine.registry import MODEL_WRAPPERS
from torch.nn.parallel import DistributedDataParallel

__all__ = ['has_accelerator', 'setup_cpu_distributed', 'shutdown_distributed']


def has_accelerator() -> bool:
    """Whether MMEngine finds a device other than the CPU (CUDA, NPU, MLU
    or MUSA)."""
    return (is_cuda_available() or is_npu_available() or is_mlu_available()
            or is_musa_available())


def setup_cpu_distributed(cfg: Config) -> bool:
    """Prepare a distributed run on CPU, before ``Runner.from_cfg(cfg)``.

    Does nothing unless ``cfg.launcher`` is set and there is no accelerator.
    Then, for ``'pytorch'`` (torchrun, ``tools/dist_train.sh``), it starts
    ``torch.distributed`` from torchrun's environment with the backend of
    ``env_cfg.dist_cfg`` (``'nccl'``, the GPU-only default of mmseg's
    runtime, becomes ``'gloo'`` with a warning) and its ``timeout`` (seconds),
    and makes ``model_wrapper_cfg`` build DDP (the default wrapper) without
    device ids.

    Args:
        cfg (Config): The full config; ``cfg.launcher`` is the ``--launcher``
            of the tool. ``cfg.model_wrapper_cfg`` is set.

    Returns:
        bool: True if it prepared a CPU distributed run.

    Raises:
        ValueError: For ``--launcher slurm`` or ``mpi`` without an
            accelerator (MMEngine needs GPUs there), naming the fix.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or has_accelerator():
        return False
    if launcher != 'pytorch':
        raise ValueError(
            f'--launcher {launcher} needs GPUs (MMEngine assigns one per '
            'process); on CPU-only machines launch with torchrun: '
            'tools/dist_train.sh / tools/dist_test.sh (--launcher pytorch).')
    env_cfg = cfg.get('env_cfg', None) or {}
    dist_cfg = dict(env_cfg.get('dist_cfg', None) or {})
    backend = dist_cfg.pop('backend', 'nccl')
    if backend == 'nccl':
        print_log(
            "env_cfg.dist_cfg.backend='nccl' needs GPUs; this CPU run uses "
            "'gloo' (set env_cfg.dist_cfg.backend='gloo' to silence this).",
            logger='current', level=logging.WARNING)
        backend = 'gloo'
    if not torch_dist.is_initialized():
        timeout = dist_cfg.pop('timeout', None)
        if timeout is not None:
            dist_cfg['timeout'] = datetime.timedelta(seconds=timeout)
        torch_dist.init_process_group(backend=backend, **dist_cfg)
    wrapper = dict(cfg.get('model_wrapper_cfg', None) or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters',
                       cfg.get('find_unused_parameters', False))
    if issubclass(MODEL_WRAPPERS.get(wrapper['type']), DistributedDataParallel):
        wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    return True


def shutdown_distributed() -> None:
    """Leave the process group once every rank is done.

    Call it after a successful ``runner.train()`` / ``runner.test()`` (after
    an error the other ranks may never reach the barrier), once the caller
    holds no reference to the runner: the runner's DDP wrapper keeps the
    process group alive through reference cycles, so the group's native
    gloo threads would outlive ``destroy_process_group``. A rank that exits
    with them running can abort at interpreter teardown ("terminate called
    without an active exception", SIGABRT), which torchrun reports as a
    failed run although the work finished (about one 2-process CPU run in
    five). Collecting the cycles first lets the group be freed and its
    threads joined here.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        gc.collect()
        torch_dist.barrier()
        torch_dist.destroy_process_group()
