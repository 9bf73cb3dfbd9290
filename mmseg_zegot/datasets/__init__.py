# Copyright (c) mmseg_zegot contributors. All rights reserved.
from . import transforms  # noqa: F401
