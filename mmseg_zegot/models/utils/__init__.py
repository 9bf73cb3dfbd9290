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
from .ensemble import ENSEMBLE_SPACES, ensemble_probabilities, log_prob_to_logit
from .frozen_clip import FrozenCLIPMixin
from .mpot import mpot_score
from .sinkhorn import OT_GRAD_MODES, check_sinkhorn_args, sinkhorn
from .text_alignment import TEXT_ALIGNMENT_INITS, align_text, init_text_alignment
from .zero_shot_targets import (
    PSEUDO_LABEL,
    assign_pseudo_labels,
    map_labels,
    training_label_map,
)

__all__ = [
    'QUICK_GELU_KEY', 'FrozenCLIPMixin', 'OT_GRAD_MODES', 'build_clip',
    'check_quick_gelu', 'is_openai_weights', 'is_torchscript_archive',
    'load_clip_state_dict', 'load_clip_weights', 'recorded_quick_gelu',
    'save_clip_weights', 'sinkhorn', 'check_sinkhorn_args', 'mpot_score',
    'ENSEMBLE_SPACES', 'ensemble_probabilities', 'log_prob_to_logit',
    'TEXT_ALIGNMENT_INITS', 'align_text', 'init_text_alignment',
    'PSEUDO_LABEL', 'assign_pseudo_labels', 'map_labels',
    'training_label_map'
]
