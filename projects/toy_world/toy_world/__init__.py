# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The toy world: the embedded zero-shot benchmark of mmseg_zegot.

``custom_imports=dict(imports=['mmseg_zegot',
'projects.toy_world.toy_world'], allow_failed_imports=False)`` in a config
(run from the repository root, or with it on ``PYTHONPATH``) registers
:class:`ZegOTToyWorldDataset` in mmseg's ``DATASETS`` and the split
``'toy'``. The renderer (:mod:`.world`), the toy CLIP (:mod:`.toy_clip`,
:mod:`.captions`, :mod:`.pretrain`), the benchmark (:mod:`.benchmark`) and
its figure (:mod:`.figure`) are imported on use.
"""
import mmseg_zegot  # noqa: F401  (first: mmseg's imports need its mmcv shim)

from .dataset import TOY_SPLIT, ZegOTToyWorldDataset, read_world_classes
from .world import CLASS_NAMES, choose_unseen, generate_world

__all__ = [
    'CLASS_NAMES', 'TOY_SPLIT', 'ZegOTToyWorldDataset', 'choose_unseen',
    'generate_world', 'read_world_classes'
]
