# Copyright (c) mmseg_zegot contributors. All rights reserved.
from .clip_utils import (
                         QUICK_GELU_KEY,
                         FrozenCLIPMixin,
                         build_clip,
                         check_quick_gelu,
                         is_openai_weights,
                         load_clip_state_dict,
                         load_clip_weights,
                         recorded_quick_gelu,
                         save_clip_weights,
)
from .sinkhorn import OT_GRAD_MODES, sinkhorn

__all__ = [
    'QUICK_GELU_KEY', 'FrozenCLIPMixin', 'OT_GRAD_MODES', 'build_clip',
    'check_quick_gelu', 'is_openai_weights', 'load_clip_state_dict',
    'load_clip_weights', 'recorded_quick_gelu', 'save_clip_weights',
    'sinkhorn'
]
