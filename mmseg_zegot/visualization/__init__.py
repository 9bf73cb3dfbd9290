# Copyright (c) mmseg_zegot contributors. All rights reserved.
from .figures import class_palette, save_segmentation_grid

__all__ = ['class_palette', 'save_segmentation_grid']
