# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Publish a trained checkpoint: trained weights and plain metadata only.

    python tools/publish_checkpoint.py IN.pth OUT.pth [--safetensors]
        [--keep-frozen] [--config CONFIG] [--cfg-options ...]

Drops the optimizer, scheduler and message-hub states and, unless
``--keep-frozen``, the frozen CLIP towers, which ``tools/test.py`` loads
again from the CLIP file the config names (``model.image_encoder.pretrained``
and ``model.text_encoder.pretrained``). Keeps the config text, the class
vocabulary and zero-shot split, the source iteration and the library
versions (see :mod:`mmseg_zegot.utils.published`). Like mmseg's
``publish_model.py``, the file is renamed ``OUT-<first 8 hex of its
sha256>.pth`` (or ``.safetensors``); its path, size and sha256 are printed.
The model is built from the config stored in ``IN`` (its structure tells
which weights are frozen CLIP); ``--config`` gives another one. The stored
config is read as data, never executed (``IN`` may come from someone
else): only literals, lists, tuples and dicts, and ``type`` names
registered in mmseg's registries (:mod:`mmseg_zegot.utils.stored_config`);
anything else is refused with a request for ``--config``.
"""
import argparse
import hashlib
import os
import os.path as osp

import _bootstrap_path  # noqa: F401
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmseg_zegot  # noqa: F401  (registers components before the config)
import mmseg_zegot.safe_loading  # noqa: F401  (opt-in: weights-only loading)
from mmseg_zegot.utils import (
    config_from_stored_text,
    is_published,
    load_config,
    publish_checkpoint,
    read_checkpoint,
    save_published,
)

_SUFFIXES = ('.pth', '.safetensors')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='training checkpoint to publish')
    parser.add_argument(
        'dst', help='output path; the hash is added before the extension')
    parser.add_argument(
        '--safetensors',
        action='store_true',
        help='write a .safetensors file (implied by a DST ending in '
        '.safetensors)')
    parser.add_argument(
        '--keep-frozen',
        action='store_true',
        help='keep the frozen CLIP weights too: a self-contained file that '
        'needs no CLIP file to test')
    parser.add_argument(
        '--config',
        help='config to build the model from (default: the one stored in '
        'SRC)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, as for tools/train.py')
    return parser.parse_args(argv)


def sha256sum(filename: str) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(filename, 'rb') as file:
        for block in iter(lambda: file.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def stored_config(checkpoint: dict, src: str) -> Config:
    """The config stored in a training checkpoint, parsed as data (never
    executed: the checkpoint may come from someone else)."""
    fix = (f'pass the config {src} was trained with (a file you trust) as '
           '--config CONFIG.')
    cfg_text = (checkpoint.get('meta') or {}).get('cfg')
    if not cfg_text:
        raise SystemExit(f'{src} stores no config (meta.cfg): {fix}')
    return config_from_stored_text(cfg_text, src, fix)


def main(argv=None):
    """Publish; returns the path of the published file and its sha256."""
    args = parse_args(argv)
    checkpoint = read_checkpoint(args.src)
    if is_published(checkpoint):
        raise SystemExit(
            f'{args.src} is already a published checkpoint; publish the '
            'training checkpoint it came from (work_dirs/.../iter_*.pth) '
            'instead.')
    cfg = (load_config(args.config) if args.config is not None else
           stored_config(checkpoint, args.src))
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model)
    published = publish_checkpoint(
        checkpoint, model, keep_frozen=args.keep_frozen,
        cfg_text=cfg.pretty_text)

    stem, suffix = osp.splitext(args.dst)
    if suffix not in _SUFFIXES:
        stem, suffix = args.dst, '.pth'
    if args.safetensors:
        suffix = '.safetensors'
    out = stem + suffix
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    save_published(published, out)
    read_checkpoint(out)  # it loads back, weights-only
    sha256 = sha256sum(out)
    final = f'{stem}-{sha256[:8]}{suffix}'
    os.replace(out, final)
    size, src_size = osp.getsize(final), osp.getsize(args.src)
    frozen = 'with' if args.keep_frozen else 'without'
    print_log(
        f'Published {final} ({frozen} the frozen CLIP weights): '
        f'{len(published["state_dict"])} entries, {size / 2**20:.2f} MiB '
        f'(from {src_size / 2**20:.2f} MiB), sha256 {sha256}',
        logger='current')
    return final, sha256


if __name__ == '__main__':
    main()
