# Copyright (c) mmseg_zegot contributors. All rights reserved.
from .checkpoint_hook import ZegOTCheckpointHook
from .load_from_check_hook import ZegOTLoadFromCheckHook
from .plain_checkpoint_hook import ZegOTPlainCheckpointHook
from .show_dir_hook import ZegOTShowDirHook
from .startup_check_hook import ZegOTStartupCheckHook

__all__ = [
    'ZegOTCheckpointHook', 'ZegOTLoadFromCheckHook', 'ZegOTPlainCheckpointHook',
    'ZegOTShowDirHook', 'ZegOTStartupCheckHook'
]
