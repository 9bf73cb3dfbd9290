# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Config loading shared by the tools."""
from mmengine.config import Config

PLAIN_CHECKPOINT_HOOK = 'ZegOTPlainCheckpointHook'


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


def ensure_plain_checkpoints(cfg: Config) -> None:
    """Add :class:`ZegOTPlainCheckpointHook` to ``cfg.custom_hooks`` unless
    the config already has it, so every checkpoint our tools write loads
    with ``weights_only=True``."""
    hooks = list(cfg.get('custom_hooks', None) or [])
    if not any(hook.get('type') == PLAIN_CHECKPOINT_HOOK for hook in hooks):
        hooks.append(dict(type=PLAIN_CHECKPOINT_HOOK))
    cfg.custom_hooks = hooks
