# Copyright (c) mmseg_zegot contributors. All rights reserved.
from .figures import class_palette, save_segmentation_grid
from .overlay import LegendEntry, blend_labels, draw_legend, render_overlay

__all__ = [
    'LegendEntry', 'blend_labels', 'class_palette', 'draw_legend',
    'render_overlay', 'save_segmentation_grid'
]
