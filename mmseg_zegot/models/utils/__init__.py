# Copyright (c) mmseg_zegot contributors. All rights reserved.
from .clip_build import build_clip, check_quick_gelu
from .clip_checkpoint import (
    QUICK_GELU_KEY,
    is_openai_weights,
    is_torchscript_archive,
    load_clip_state_dict,
    load_clip_weights,
    recorded_quick_gelu,
    save_clip_weights,
)
from .frozen_clip import FrozenCLIPMixin
from .sinkhorn import OT_GRAD_MODES, sinkhorn

__all__ = [
    'QUICK_GELU_KEY', 'FrozenCLIPMixin', 'OT_GRAD_MODES', 'build_clip',
    'check_quick_gelu', 'is_openai_weights', 'is_torchscript_archive',
    'load_clip_state_dict', 'load_clip_weights', 'recorded_quick_gelu',
    'save_clip_weights', 'sinkhorn'
]
