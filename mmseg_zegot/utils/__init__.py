# Copyright (c) mmseg_zegot contributors. All rights reserved.
from .atomic_io import atomic_torch_save, atomic_write
from .checkpoint import (
                         UnsafeCheckpointError,
                         from_plain,
                         load_checkpoint_safely,
                         to_plain,
)
from .config import (
                     load_config,
                     resolve_resume,
                     root_cause,
                     warn_unsafe_runtime,
)
from .published import (
                        PUBLISHED_FORMAT,
                        frozen_clip_keys,
                        frozen_clip_prefixes,
                        is_published,
                        load_segmentor_checkpoint,
                        publish_checkpoint,
                        read_checkpoint,
                        save_published,
)
from .remote_checkpoint import download_to_cache, load_from_http_weights_only
from .stored_config import StoredConfigError, config_from_stored_text

__all__ = [
    'PUBLISHED_FORMAT', 'StoredConfigError', 'UnsafeCheckpointError',
    'config_from_stored_text',
    'atomic_torch_save', 'atomic_write', 'download_to_cache', 'from_plain',
    'frozen_clip_keys', 'frozen_clip_prefixes', 'is_published',
    'load_checkpoint_safely', 'load_config', 'load_from_http_weights_only',
    'load_segmentor_checkpoint', 'publish_checkpoint', 'read_checkpoint',
    'resolve_resume', 'root_cause', 'save_published', 'to_plain',
    'warn_unsafe_runtime'
]
