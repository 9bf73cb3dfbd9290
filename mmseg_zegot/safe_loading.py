# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Opt-in: MMEngine loads every checkpoint with ``weights_only=True``.

``import mmseg_zegot`` only registers components; it leaves MMEngine's
checkpoint loading as it is. This module is the single, explicit opt-in to
safe loading, and the one place where mmseg_zegot patches MMEngine (the
``mmcv.ops`` stand-in of :mod:`mmseg_zegot.compat.mmcv_ops` is the only
other patch of a third-party library). Opt in with either of::

    custom_imports = dict(
        imports=['mmseg_zegot', 'mmseg_zegot.safe_loading'],
        allow_failed_imports=False)

or ``import mmseg_zegot.safe_loading`` in a script. Our configs
(``configs/_base_/default_runtime.py`` and the examples) list it, and our
tools import it, so it is the default of this project; it changes how every
model in the process loads checkpoints, which is why importing the library
alone does not do it.

Why: MMEngine 0.10.7 reads local checkpoints with ``torch.load`` without
``weights_only`` (so ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` turns full
unpickling back on), and URLs with ``torch.hub.load_state_dict_from_url``,
whose ``weights_only`` defaults to False: a ``load_from``, ``--resume``,
``init_cfg=dict(type='Pretrained', checkpoint=...)`` or mmseg ``init_model``
pointing at a crafted file runs code from it. MMEngine has no public option
for ``weights_only``; its public extension point is
``CheckpointLoader.register_scheme``, which this module uses for local
files (prefix ``''``) and ``http(s)://``. MMEngine's name-resolving schemes
(``open-mmlab://``, ``torchvision://``, ``modelzoo://``, ``mmcls://``) call
the module attribute ``mmengine.runner.checkpoint.load_from_http`` by name,
which the scheme registry does not reach, so that attribute is reassigned
too. What is installed:

* :func:`load_from_local_weights_only` as the loader of local files;
* :func:`~mmseg_zegot.utils.remote_checkpoint.load_from_http_weights_only`
  as the loader of ``http://`` and ``https://`` and as
  ``mmengine.runner.checkpoint.load_from_http``.

Both read through :func:`~mmseg_zegot.utils.checkpoint.load_checkpoint_safely`,
which refuses a file that needs full unpickling and says how to convert one
the user trusts. Checkpoints written with
:class:`~mmseg_zegot.engine.hooks.ZegOTPlainCheckpointHook` load this way;
MMEngine's own (numpy arrays, ``HistoryBuffer``) are refused, as torch >= 2.6
refuses them by default. Tested in ``tests/test_compat/test_safe_loading_opt_in.py``
and ``tests/test_reliability/test_safe_loading.py``.
"""
from typing import Any

import mmengine.runner.checkpoint as mmengine_checkpoint
from mmengine.runner import CheckpointLoader

from .utils.checkpoint import load_checkpoint_safely
from .utils.remote_checkpoint import load_from_http_weights_only

#: The ``CheckpointLoader`` prefixes this module takes over.
LOCAL_PREFIX = ''
HTTP_PREFIXES = ('http://', 'https://')


def load_from_local_weights_only(filename: str, map_location=None) -> Any:
    """MMEngine's local-file loader scheme; its name is what MMEngine logs
    ("Loads checkpoint by local_weights_only backend")."""
    return load_checkpoint_safely(filename, map_location)


def install_safe_loading() -> None:
    """Make MMEngine load local files and URLs with ``weights_only=True``.

    Idempotent; called when this module is imported.
    """
    CheckpointLoader.register_scheme(
        prefixes=LOCAL_PREFIX, loader=load_from_local_weights_only,
        force=True)
    CheckpointLoader.register_scheme(
        prefixes=HTTP_PREFIXES, loader=load_from_http_weights_only,
        force=True)
    mmengine_checkpoint.load_from_http = load_from_http_weights_only


install_safe_loading()
