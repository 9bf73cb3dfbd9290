# Copyright (c) mmseg_zegot contributors. All rights reserved.
from .atomic_backend import ZegOTAtomicLocalBackend
from .hooks import ZegOTCheckpointHook, ZegOTPlainCheckpointHook

__all__ = [
    'ZegOTAtomicLocalBackend', 'ZegOTCheckpointHook', 'ZegOTPlainCheckpointHook'
]
