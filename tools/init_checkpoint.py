# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Write the checkpoint of a model at initialisation (CLIP loaded).

    python tools/init_checkpoint.py CONFIG OUT.pth [--cfg-options ...]

For training-free models (e.g.
``projects/toy_world/configs/dense-clip_toy.py``): builds the model, runs
``init_weights()`` (which loads the frozen CLIP from its ``pretrained``
file) and saves a plain checkpoint that ``tools/test.py`` evaluates like
any trained one.
"""
import argparse

import _bootstrap_path  # noqa: F401
from mmengine.config import DictAction
from mmengine.logging import print_log
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmseg_zegot  # noqa: F401  (registers components before the config)
import mmseg_zegot.safe_loading  # noqa: F401  (opt-in: weights-only loading)
from mmseg_zegot.utils import atomic_torch_save, load_config, to_plain


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='model config file')
    parser.add_argument('out', help='checkpoint to write')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, as for tools/train.py')
    return parser.parse_args()


def main():
    args = parse_args()
    cfg = load_config(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model)
    model.init_weights()
    meta = dict(cfg=cfg.pretty_text, iter=0, mmseg_zegot=mmseg_zegot.__version__)
    atomic_torch_save(
        to_plain(dict(meta=meta, state_dict=model.state_dict())), args.out)
    print_log(f'Wrote {args.out}.', logger='current')


if __name__ == '__main__':
    main()
