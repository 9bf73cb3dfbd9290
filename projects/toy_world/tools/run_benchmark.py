# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The embedded default main job: zero-shot segmentation of the toy world
(see :mod:`projects.toy_world.toy_world.benchmark`).

    python projects/toy_world/tools/run_benchmark.py    # what `make demo` runs
    python projects/toy_world/tools/run_benchmark.py --split-seeds 1 2 \
        --train-seeds 0 1 2
"""
import _bootstrap_path  # noqa: F401

from projects.toy_world.toy_world.benchmark import main

if __name__ == '__main__':
    main()
