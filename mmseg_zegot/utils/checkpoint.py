# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Checkpoints that load with ``torch.load(weights_only=True)``.

torch >= 2.6 refuses to unpickle anything but tensors and plain Python data
by default, and MMEngine 0.10.7 writes numpy arrays and ``HistoryBuffer``
objects into every checkpoint (the message hub). Rather than switching the
safety check off, we make what is saved plain:

* :func:`to_plain` turns those objects into tagged dicts of Python data;
  :func:`from_plain` restores them after loading. The hook
  :class:`~mmseg_zegot.engine.hooks.ZegOTPlainCheckpointHook` applies them on
  save and load.
* :func:`load_checkpoint_safely` always passes ``weights_only=True`` and
  turns a refusal into an error that says why and how to convert a
  checkpoint the user trusts. :mod:`mmseg_zegot.safe_loading` (an opt-in)
  makes it MMEngine's local-file loader.
"""
import os.path as osp
import pickle
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

TYPE_KEY = '__zegot_type__'
_PRIMITIVES = (str, int, float, bool, complex, bytes, type(None))


def to_plain(obj: Any, path: str = 'checkpoint') -> Any:
    """Convert ``obj`` to data that ``weights_only`` unpickling accepts.

    Tensors and Python primitives pass through; containers are converted
    recursively; numpy arrays/scalars and ``HistoryBuffer`` become tagged
    dicts that :func:`from_plain` restores.

    Args:
        obj: Any object of a checkpoint.
        path (str): Where ``obj`` sits in the checkpoint, for error messages.

    Raises:
        TypeError: For an object of another type, naming where it is.
    """
    if isinstance(obj, (torch.Tensor, torch.Size, torch.dtype, torch.device)):
        return obj
    if isinstance(obj, np.generic):  # before primitives: np.float64 is a float
        return obj.item()
    if isinstance(obj, _PRIMITIVES):
        return obj
    if isinstance(obj, np.ndarray):
        return {TYPE_KEY: 'ndarray', 'data': obj.tolist(),
                'dtype': str(obj.dtype), 'shape': list(obj.shape)}
    if isinstance(obj, HistoryBuffer):
        return {TYPE_KEY: 'HistoryBuffer',
                'log_history': to_plain(obj._log_history, path),
                'count_history': to_plain(obj._count_history, path),
                'max_length': obj.max_length}
    if isinstance(obj, dict):
        plain = ((key, to_plain(value, f'{path}[{key!r}]'))
                 for key, value in obj.items())
        return OrderedDict(plain) if isinstance(obj, OrderedDict) else dict(
            plain)
    if isinstance(obj, (list, tuple, set)):
        items = [to_plain(value, f'{path}[{i}]') for i, value in enumerate(obj)]
        return items if isinstance(obj, list) else tuple(items)
    raise TypeError(
        f'{path} holds a {type(obj).__module__}.{type(obj).__qualname__}, '
        'which a weights-only checkpoint cannot store. Store it as tensors '
        'or plain Python data (or teach mmseg_zegot.utils.checkpoint.to_plain '
        'to convert it).')


def from_plain(obj: Any) -> Any:
    """Undo :func:`to_plain` (tagged dicts back to numpy/HistoryBuffer)."""
    if isinstance(obj, dict):
        kind = obj.get(TYPE_KEY)
        if kind == 'ndarray':
            return np.asarray(obj['data'], dtype=obj['dtype']).reshape(
                obj['shape'])
        if kind == 'HistoryBuffer':
            log_history = from_plain(obj['log_history'])
            count_history = from_plain(obj['count_history'])
            return HistoryBuffer(log_history, count_history,
                                 obj['max_length'])
        restored = ((key, from_plain(value)) for key, value in obj.items())
        return OrderedDict(restored) if isinstance(
            obj, OrderedDict) else dict(restored)
    if isinstance(obj, list):
        return [from_plain(value) for value in obj]
    if isinstance(obj, tuple):
        return tuple(from_plain(value) for value in obj)
    return obj


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint that only unsafe (code-running) unpickling can read."""


def load_checkpoint_safely(filename: str, map_location=None) -> Any:
    """Load a local checkpoint with ``torch.load(weights_only=True)``.

    Args:
        filename (str): Path of the checkpoint.
        map_location: As for :func:`torch.load`.

    Raises:
        FileNotFoundError: If ``filename`` does not exist.
        UnsafeCheckpointError: If the file holds objects that would need
            full unpickling (which can run code from the file).
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'Checkpoint {filename} does not exist.')
    try:
        return torch.load(filename, map_location=map_location,
                          weights_only=True)
    except pickle.UnpicklingError as error:
        raise UnsafeCheckpointError(
            f'Refusing to load {filename}: it holds Python objects that only '
            'full unpickling can restore, and full unpickling can run code '
            'from the file, so mmseg_zegot loads checkpoints with '
            'weights_only=True. If you trust where the file comes from, '
            'convert it once into a plain checkpoint: `python '
            f'tools/convert_checkpoint.py --trust {filename} OUT.pth`, then '
            f'use OUT.pth. Details: {str(error).splitlines()[0]}') from error

