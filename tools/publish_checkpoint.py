# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Publish a trained checkpoint: trained weights and plain metadata only.

    python tools/publish_checkpoint.py IN.pth OUT.pth [--safetensors]
        [--keep-frozen] [--config CONFIG] [--cfg-options ...]

Drops the optimizer, scheduler and message-hub states and, unless
``--keep-frozen``, the frozen CLIP towers, which ``tools/test.py`` loads
again from the CLIP file the config names (``model.image_encoder.pretrained``
and ``model.text_encoder.pretrained``). Keeps the config text, the class
vocabulary and zero-shot split, the source iteration and the library
versions (see :mod:`mmseg_zegot.utils.published`; the steps are
:func:`mmseg_zegot.utils.publish.publish_file`). Like mmseg's
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

import _bootstrap_path  # noqa: F401
from mmengine.config import DictAction

import mmseg_zegot  # noqa: F401  (registers components before the config)
import mmseg_zegot.safe_loading  # noqa: F401  (opt-in: weights-only loading)
from mmseg_zegot.utils.publish import PublishError, publish_file


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


def main(argv=None):
    """Publish; returns the path of the published file and its sha256."""
    args = parse_args(argv)
    try:
        return publish_file(args.src, args.dst, config=args.config,
                            cfg_options=args.cfg_options,
                            keep_frozen=args.keep_frozen,
                            safetensors=args.safetensors)
    except PublishError as error:
        raise SystemExit(str(error)) from None


if __name__ == '__main__':
    main()
