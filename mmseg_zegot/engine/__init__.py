# Copyright (c) mmseg_zegot contributors. All rights reserved.
from .hooks import ZegOTPlainCheckpointHook

__all__ = ['ZegOTPlainCheckpointHook']
