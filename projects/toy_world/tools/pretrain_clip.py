# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Pretrain the toy CLIP on the toy world's image-caption pairs (see
:mod:`projects.toy_world.toy_world.pretrain`).

Example::

    python projects/toy_world/tools/pretrain_clip.py --out-dir work_dirs/toy_clip
    python projects/toy_world/tools/pretrain_clip.py --quick --out-dir /tmp/toy_clip
"""
import _bootstrap_path  # noqa: F401

from projects.toy_world.toy_world.pretrain import main

if __name__ == '__main__':
    main()
