# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Publish a training checkpoint file: the steps of
``tools/publish_checkpoint.py``.

The model is built from the config stored in the checkpoint (its structure
tells which weights are frozen CLIP) or from a given one; the published
form (:func:`~mmseg_zegot.utils.published.publish_checkpoint`) is written,
read back weights-only, and, like mmseg's ``publish_model.py``, renamed
``OUT-<first 8 hex of its sha256>.pth`` (or ``.safetensors``). The stored
config is read as data, never executed (the checkpoint may come from
someone else; :mod:`mmseg_zegot.utils.stored_config`).
"""
import hashlib
import os
import os.path as osp
from typing import Optional, Tuple

from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from .config import load_config
from .published import (
    is_published,
    publish_checkpoint,
    read_checkpoint,
    save_published,
)
from .stored_config import config_from_stored_text

_SUFFIXES = ('.pth', '.safetensors')


class PublishError(ValueError):
    """A checkpoint that cannot be published as given, with the fix."""


def sha256sum(filename: str) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(filename, 'rb') as file:
        for block in iter(lambda: file.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def stored_config(checkpoint: dict, src: str) -> Config:
    """The config stored in a training checkpoint, parsed as data (never
    executed: the checkpoint may come from someone else).

    Raises:
        PublishError: If the checkpoint stores no config.
    """
    fix = (f'pass the config {src} was trained with (a file you trust) as '
           '--config CONFIG.')
    cfg_text = (checkpoint.get('meta') or {}).get('cfg')
    if not cfg_text:
        raise PublishError(f'{src} stores no config (meta.cfg): {fix}')
    return config_from_stored_text(cfg_text, src, fix)


def publish_file(src: str,
                 dst: str,
                 config: Optional[str] = None,
                 cfg_options: Optional[dict] = None,
                 keep_frozen: bool = False,
                 safetensors: bool = False) -> Tuple[str, str]:
    """Publish the training checkpoint ``src`` next to ``dst``.

    Args:
        src (str): A training checkpoint (``work_dirs/.../iter_*.pth``).
        dst (str): The output path; the hash is added before the extension
            (``.pth`` unless it ends in ``.safetensors``).
        config (str, optional): Config file to build the model from;
            default: the one stored in ``src``.
        cfg_options (dict, optional): Overrides merged into the config.
        keep_frozen (bool): Keep the frozen CLIP weights too (a
            self-contained file). Defaults to False.
        safetensors (bool): Write a ``.safetensors`` file. Defaults to
            False.

    Returns:
        tuple[str, str]: The published file's path and its hex sha256.

    Raises:
        PublishError: If ``src`` is already published or stores no config
            (and none is given).
    """
    checkpoint = read_checkpoint(src)
    if is_published(checkpoint):
        raise PublishError(
            f'{src} is already a published checkpoint; publish the '
            'training checkpoint it came from (work_dirs/.../iter_*.pth) '
            'instead.')
    cfg = (load_config(config) if config is not None else
           stored_config(checkpoint, src))
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model)
    published = publish_checkpoint(
        checkpoint, model, keep_frozen=keep_frozen, cfg_text=cfg.pretty_text)

    stem, suffix = osp.splitext(dst)
    if suffix not in _SUFFIXES:
        stem, suffix = dst, '.pth'
    if safetensors:
        suffix = '.safetensors'
    out = stem + suffix
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    save_published(published, out)
    read_checkpoint(out)  # it loads back, weights-only
    sha256 = sha256sum(out)
    final = f'{stem}-{sha256[:8]}{suffix}'
    os.replace(out, final)
    size, src_size = osp.getsize(final), osp.getsize(src)
    frozen = 'with' if keep_frozen else 'without'
    print_log(
        f'Published {final} ({frozen} the frozen CLIP weights): '
        f'{len(published["state_dict"])} entries, {size / 2**20:.2f} MiB '
        f'(from {src_size / 2**20:.2f} MiB), sha256 {sha256}',
        logger='current')
    return final, sha256
