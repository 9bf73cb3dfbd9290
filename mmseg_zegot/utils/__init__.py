# Copyright (c) mmseg_zegot contributors. All rights reserved.
from .checkpoint import (
                         UnsafeCheckpointError,
                         from_plain,
                         load_checkpoint_safely,
                         register_safe_checkpoint_loader,
                         to_plain,
)
from .config import ensure_plain_checkpoints, load_config, root_cause

__all__ = [
    'UnsafeCheckpointError', 'ensure_plain_checkpoints', 'from_plain',
    'load_checkpoint_safely', 'load_config', 'register_safe_checkpoint_loader',
    'root_cause', 'to_plain'
]
