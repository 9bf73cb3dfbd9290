# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Config loading and the config switches of the tools."""
import importlib.util
import logging
from typing import List

from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.runner import find_latest_checkpoint

from .dist import has_accelerator

PLAIN_CHECKPOINT_HOOK = 'ZegOTPlainCheckpointHook'
ATOMIC_CHECKPOINT_HOOK = 'ZegOTCheckpointHook'


def root_cause(error: BaseException) -> BaseException:
    """The innermost exception of a chain, following both explicit causes
    (``raise ... from``) and the implicit context of a re-raise."""
    while True:
        inner = error.__cause__
        if inner is None and not error.__suppress_context__:
            inner = error.__context__
        if inner is None:
            return error
        error = inner


def load_config(path: str) -> Config:
    """``Config.fromfile`` with the real reason when ``custom_imports`` fails.

    MMEngine reports any failure inside a custom import as "set PYTHONPATH";
    the actual error sits two levels down the exception chain. This puts it
    first in the message, keeping the chain for the traceback.
    """
    try:
        return Config.fromfile(path)
    except ImportError as error:
        cause = root_cause(error)
        if cause is error:
            raise
        raise ImportError(
            f'Loading {path} failed while importing its `custom_imports`: '
            f'{type(cause).__name__}: {cause}') from error


def warn_unsafe_runtime(cfg: Config) -> List[str]:
    """Warn about each checkpoint-safety hook a training config lacks.

    Our configs declare both hooks (``ZegOTPlainCheckpointHook`` in
    ``configs/_base_/default_runtime.py``, ``ZegOTCheckpointHook`` in the
    ZegOT schedules and the examples). ``tools/train.py`` does not add them
    to another config; it logs these warnings and leaves the config as it
    is.

    Args:
        cfg (Config): A training config.

    Returns:
        list[str]: The warnings logged, one per missing hook, naming the
        config key and the fix; empty when the config has both.
    """
    missing = []
    hooks = cfg.get('custom_hooks', None) or []
    if not any(hook.get('type') == PLAIN_CHECKPOINT_HOOK for hook in hooks):
        missing.append(
            f'`custom_hooks` has no {PLAIN_CHECKPOINT_HOOK}: the checkpoints '
            'will hold numpy arrays and HistoryBuffer objects, which '
            '`torch.load(weights_only=True)` refuses, so `--resume` and '
            '`load_from` fail on them. Add '
            f'dict(type={PLAIN_CHECKPOINT_HOOK!r}) to `custom_hooks`.')
    checkpoint = (cfg.get('default_hooks', None) or {}).get('checkpoint')
    if checkpoint is not None and checkpoint.get(
            'type') != ATOMIC_CHECKPOINT_HOOK:
        missing.append(
            f'`default_hooks.checkpoint.type` is {checkpoint.get("type")!r}: '
            'a run killed while saving can lose its only checkpoint. Set it '
            f'to {ATOMIC_CHECKPOINT_HOOK!r} (same arguments).')
    for line in missing:
        print_log(line, logger='current', level=logging.WARNING)
    return missing


def resolve_resume(cfg: Config) -> None:
    """What ``tools/train.py --resume`` continues from.

    ``--resume`` means "continue from the latest checkpoint in the work
    folder". MMEngine resumes from ``load_from`` instead whenever a config
    sets it, so ``--resume`` on a transductive config (whose ``load_from``
    is the inductive run's half-way checkpoint) would restore that
    checkpoint's iteration count and stop at once. For a config with
    ``load_from``: the work folder's latest checkpoint becomes the one
    resumed; with none there, the run starts afresh from ``load_from``
    (weights only), as without ``--resume``.

    Args:
        cfg (Config): With ``resume`` (bool), ``work_dir`` and optionally
            ``load_from``; updated in place.
    """
    if not cfg.get('resume', False) or not cfg.get('load_from'):
        return
    latest = find_latest_checkpoint(cfg.work_dir)
    if latest is not None:
        print_log(f'--resume: continuing from {latest} (the latest '
                  f'checkpoint in {cfg.work_dir}), not from load_from='
                  f'{cfg.load_from}.', logger='current')
        cfg.load_from = latest
        return
    print_log(f'--resume: no checkpoint in {cfg.work_dir} yet; starting from '
              f'load_from={cfg.load_from} at iteration 0.', logger='current',
              level=logging.WARNING)
    cfg.resume = False


def enable_amp(cfg) -> None:
    """Switch ``cfg.optim_wrapper`` to ``AmpOptimWrapper`` (as mmseg does).

    MMEngine's ``AmpOptimWrapper`` needs a GPU (or NPU/MLU/MUSA): it scales
    the loss with CUDA's ``GradScaler`` and asserts a device at build time.
    On a CPU-only machine ``--amp`` is refused here, before any data or
    weights are loaded, instead of failing with that assertion.
    """
    if not has_accelerator():
        raise ValueError(
            '`--amp` needs a GPU (MMEngine\'s AmpOptimWrapper scales the '
            'loss with CUDA\'s GradScaler) and none was found: drop `--amp` '
            'to train in float32 on the CPU.')
    optim_wrapper = cfg.optim_wrapper.type
    if optim_wrapper == 'AmpOptimWrapper':
        print_log(
            'AMP training is already enabled in your config.',
            logger='current',
            level=logging.WARNING)
        return
    if optim_wrapper != 'OptimWrapper':
        raise ValueError(
            '`--amp` needs `optim_wrapper.type` to be `OptimWrapper`, got '
            f'{optim_wrapper!r}; set AmpOptimWrapper in the config instead.')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.loss_scale = 'dynamic'


def enable_tensorboard(cfg) -> None:
    """Add a ``TensorboardVisBackend`` to ``cfg.visualizer.vis_backends``
    (once), so the runner's visualizer also writes TensorBoard events."""
    if importlib.util.find_spec('tensorboard') is None:
        raise ValueError(
            '`tensorboard=True` / `--tensorboard` needs the tensorboard '
            'package: `pip install tensorboard`, or switch it off.')
    visualizer = cfg.get('visualizer', None)
    if visualizer is None:
        raise ValueError(
            '`tensorboard=True` / `--tensorboard` needs a `visualizer` in the '
            "config, e.g. the one of mmseg's `_base_/default_runtime.py`.")
    backends = list(visualizer.get('vis_backends', None) or [])
    if not any(backend.get('type') == 'TensorboardVisBackend'
               for backend in backends):
        backends.append(dict(type='TensorboardVisBackend'))
    visualizer.vis_backends = backends
