# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Checkpoints from URLs load with ``weights_only=True`` too.

MMEngine 0.10.7 reads ``http://`` and ``https://`` checkpoints, and the
``torchvision://``, ``modelzoo://``, ``open-mmlab://`` and ``mmcls://`` names
that resolve to URLs, with ``torch.hub.load_state_dict_from_url``, whose
``weights_only`` defaults to False: a ``load_from``, ``--resume`` or
``init_cfg=dict(type='Pretrained', checkpoint=URL)`` pointing at a crafted
file runs code from it. :func:`load_from_http_weights_only` is the safe
replacement; :mod:`mmseg_zegot.safe_loading` (an opt-in) installs it for
both URL schemes and for the name-resolving ones. The file is downloaded
to the same cache as MMEngine's (``<torch hub dir>/checkpoints``) and read by
:func:`~mmseg_zegot.utils.checkpoint.load_checkpoint_safely`, which refuses
files that need full unpickling and says how to convert a trusted one.
"""
import os
import os.path as osp
from typing import Any, Optional
from urllib.parse import urlparse

import torch
from mmengine.dist import get_dist_info

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

