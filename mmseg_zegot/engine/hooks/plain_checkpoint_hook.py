# Copyright (c) mmseg_zegot contributors. All rights reserved.
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from mmseg_zegot.utils.checkpoint import from_plain, to_plain


@HOOKS.register_module()
class ZegOTPlainCheckpointHook(Hook):
    """Write checkpoints that load under ``torch.load(weights_only=True)``.

    On save, the whole checkpoint (message hub, metadata, scheduler states)
    is converted to tensors and plain Python data; on load, the message hub
    is restored, so ``--resume`` continues logging and scheduling exactly.
    It runs after the other hooks on save, so whatever they add is
    converted too.
    """

    priority = 'LOWEST'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Replace every entry of ``checkpoint`` by its plain form."""
        plain = to_plain(checkpoint)
        checkpoint.clear()
        checkpoint.update(plain)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Restore the objects :func:`to_plain` flattened."""
        restored = from_plain(checkpoint)
        checkpoint.clear()
        checkpoint.update(restored)
