# Copyright (c) mmseg_zegot contributors. All rights reserved.
from .sinkhorn import OT_GRAD_MODES, sinkhorn

__all__ = ['OT_GRAD_MODES', 'sinkhorn']
