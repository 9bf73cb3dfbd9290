# Copyright (c) mmseg_zegot contributors. All rights reserved.
from .zero_shot_labels import ZegOTZeroShotLabels

__all__ = ['ZegOTZeroShotLabels']
