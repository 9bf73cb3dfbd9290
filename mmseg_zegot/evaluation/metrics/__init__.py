# Copyright (c) mmseg_zegot contributors. All rights reserved.
from .zero_shot_iou_metric import ZeroShotIoUMetric

__all__ = ['ZeroShotIoUMetric']
