# Copyright (c) mmseg_zegot contributors. All rights reserved.
from .plain_checkpoint_hook import ZegOTPlainCheckpointHook

__all__ = ['ZegOTPlainCheckpointHook']
