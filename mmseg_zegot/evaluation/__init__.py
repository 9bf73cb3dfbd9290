# Copyright (c) mmseg_zegot contributors. All rights reserved.
from . import metrics  # noqa: F401
from .metrics import ZeroShotIoUMetric

__all__ = ['ZeroShotIoUMetric']
