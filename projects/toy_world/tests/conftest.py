# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The project's package first: it imports mmseg_zegot (which makes
``mmseg.models`` importable on mmcv-lite) and registers the toy world."""
import projects.toy_world.toy_world  # noqa: F401
