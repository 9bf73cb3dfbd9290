# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Compatibility shims for the supported dependency stack."""
from .mmcv_ops import (
                       check_mmcv_version,
                       install_mmcv_ops_fallback,
                       point_sample,
                       sigmoid_focal_loss,
)

__all__ = [
    'check_mmcv_version', 'install_mmcv_ops_fallback', 'point_sample',
    'sigmoid_focal_loss'
]
