# Copyright (c) mmseg_zegot contributors. All rights reserved.
from .dice_loss import ZegOTDiceLoss, dice_loss
from .focal_loss import ZegOTFocalLoss, sigmoid_focal_loss

__all__ = ['ZegOTDiceLoss', 'ZegOTFocalLoss', 'dice_loss', 'sigmoid_focal_loss']
