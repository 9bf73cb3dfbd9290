# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Config loading shared by the tools."""
from mmengine.config import Config

PLAIN_CHECKPOINT_HOOK = 'ZegOTPlainCheckpointHook'


def root_cause(error: BaseException) -> BaseException:
    """The innermost exception of an ``__cause__`` chain."""
    while error.__cause__ is not None:
        error = error.__cause__
    return error


def load_config(path: str) -> Config:
    """``Config.fromfile`` with the real reason when ``custom_imports`` fails.

    MMEngine reports any failure inside a custom import as "set PYTHONPATH";
    the actual error sits two ``__cause__`` levels down. This re-raises it
    first, keeping the chain for the traceback.
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


def ensure_plain_checkpoints(cfg: Config) -> None:
    """Add :class:`ZegOTPlainCheckpointHook` to ``cfg.custom_hooks`` unless
    the config already has it, so every checkpoint our tools write loads
    with ``weights_only=True``."""
    hooks = list(cfg.get('custom_hooks', None) or [])
    if not any(hook.get('type') == PLAIN_CHECKPOINT_HOOK for hook in hooks):
        hooks.append(dict(type=PLAIN_CHECKPOINT_HOOK))
    cfg.custom_hooks = hooks
