# Copyright (c) mmseg_zegot contributors. All rights reserved.
__version__ = '0.1.0'
