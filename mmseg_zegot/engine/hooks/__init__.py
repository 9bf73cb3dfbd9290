# Copyright (c) mmseg_zegot contributors. All rights reserved.
from .checkpoint_hook import ZegOTCheckpointHook
from .plain_checkpoint_hook import ZegOTPlainCheckpointHook
from .show_dir_hook import ZegOTShowDirHook
from .startup_check_hook import ZegOTStartupCheckHook

__all__ = [
    'ZegOTCheckpointHook', 'ZegOTPlainCheckpointHook', 'ZegOTShowDirHook',
    'ZegOTStartupCheckHook'
]
