# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Checkpoints from URLs load with ``weights_only=True`` too.

MMEngine 0.10.7 reads ``http://`` and ``https://`` checkpoints, and the
``torchvision://``, ``modelzoo://``, ``open-mmlab://`` and ``mmcls://`` names
that resolve to URLs, with ``torch.hub.load_state_dict_from_url``, whose
``weights_only`` defaults to False: a ``load_from``, ``--resume`` or
``init_cfg=dict(type='Pretrained', checkpoint=URL)`` pointing at a crafted
file runs code from it. Importing this module registers
:func:`load_from_http_weights_only` for both URL schemes and makes it the
loader MMEngine's name-resolving schemes call (they call
``mmengine.runner.checkpoint.load_from_http`` by name, so the scheme
registry alone does not reach them). The file is downloaded to the same
cache as before (``<torch hub dir>/checkpoints``) and read by
:func:`~mmseg_zegot.utils.checkpoint.load_checkpoint_safely`, which refuses
files that need full unpickling and says how to convert a trusted one.
"""
import os
import os.path as osp
from typing import Any, Optional
from urllib.parse import urlparse

import mmengine.runner.checkpoint as mmengine_checkpoint
import torch
from mmengine.dist import get_dist_info
from mmengine.runner import CheckpointLoader

from .checkpoint import load_checkpoint_safely


def download_to_cache(url: str, model_dir: Optional[str] = None) -> str:
    """Download ``url`` into ``model_dir`` (default: torch hub's checkpoint
    folder) unless it is there already; return the local path."""
    if model_dir is None:
        model_dir = osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    path = osp.join(model_dir, osp.basename(urlparse(url).path))
    if not osp.isfile(path):
        torch.hub.download_url_to_file(url, path, progress=False)
    return path


def load_from_http_weights_only(filename: str,
                                map_location=None,
                                model_dir: Optional[str] = None) -> Any:
    """MMEngine's ``load_from_http`` with ``weights_only=True``: the first
    process downloads, the others wait and read the cached file."""
    rank, world_size = get_dist_info()
    if rank == 0:
        path = download_to_cache(filename, model_dir)
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            path = download_to_cache(filename, model_dir)
    return load_checkpoint_safely(path, map_location)


CheckpointLoader.register_scheme(
    prefixes=('http://', 'https://'),
    loader=load_from_http_weights_only,
    force=True)
mmengine_checkpoint.load_from_http = load_from_http_weights_only
