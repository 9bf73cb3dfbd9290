# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Published checkpoints: the trained weights only, plus plain metadata.

A training checkpoint holds the optimizer, the scheduler and the message hub
next to the weights, and most of its weights are the frozen CLIP towers,
which every user already has as the CLIP file the config names. A published
checkpoint keeps only what training changed:

* ``state_dict``: every entry of the model's state dict except those of the
  frozen open_clip towers (the ``visual`` and ``clip`` submodules of the
  modules built on :class:`~mmseg_zegot.models.utils.frozen_clip.FrozenCLIPMixin`),
  which are loaded again from ``pretrained``. Weights outside the towers are
  kept even when they do not train (e.g. ``dlfa_projection='frozen'``: they
  are copies made at initialisation, not something the CLIP file restores).
  The towers' QuickGELU records (``*._extra_state``) are kept, so a
  published file still refuses a model built with the other activation.
  ``keep_frozen=True`` keeps everything, for self-contained files.
* ``meta``: plain data only (it round-trips through JSON): the config text,
  the class vocabulary and zero-shot split, the source iteration and the
  library versions. :data:`PUBLISHED_FORMAT` in ``meta['format']`` marks
  the file.

It is stored as a ``.pth`` (``torch.save``; loads with
``torch.load(weights_only=True)``) or a ``.safetensors`` file (tensors, and
the metadata as JSON strings in the file's metadata).
:func:`load_segmentor_checkpoint` loads either kind, or a full training
checkpoint, strictly.
"""
import json
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import mmengine
import mmseg
import open_clip
import torch
from mmengine.logging import print_log
from mmengine.model import BaseTTAModel, is_model_wrapper
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes
from torch import Tensor, nn

from mmseg_zegot.models.utils.frozen_clip import FrozenCLIPMixin
from mmseg_zegot.version import __version__

from .atomic_io import atomic_torch_save, atomic_write
from .checkpoint import load_checkpoint_safely

#: ``meta['format']`` of a published checkpoint.
PUBLISHED_FORMAT = 'mmseg_zegot-published'
#: Version of the layout described in the module docstring.
PUBLISHED_FORMAT_VERSION = 1
#: Safetensors metadata keys holding JSON: the metadata, and the state-dict
#: entries that are not tensors (extra states saved as Python data).
SAFETENSORS_META_KEY = 'mmseg_zegot_meta'
SAFETENSORS_EXTRA_KEY = 'mmseg_zegot_extra_state'
#: Keys of MMEngine's checkpoint ``meta`` copied into ``meta['source']``.
_SOURCE_KEYS = ('iter', 'epoch', 'seed', 'time', 'experiment_name')
_MAX_LISTED_KEYS = 8


def _unwrap(model: nn.Module) -> nn.Module:
    """The segmentor inside a DDP wrapper or a test-time-augmentation model."""
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model


def _listed(keys) -> str:
    """A short, sorted listing of state-dict keys for error messages."""
    keys = sorted(keys)
    more = len(keys) - _MAX_LISTED_KEYS
    return str(keys[:_MAX_LISTED_KEYS])[:-1] + (
        f', ... ({more} more)]' if more > 0 else ']')


def frozen_clip_prefixes(model: nn.Module) -> Tuple[str, ...]:
    """State-dict prefixes of the frozen CLIP towers of ``model``.

    A frozen tower is a child module, holding parameters none of which
    requires gradients, of a module built on ``FrozenCLIPMixin`` (the image
    encoder's ``visual``, the text encoder's ``clip``).

    Args:
        model (nn.Module): A segmentor (wrappers are looked through).

    Returns:
        tuple[str]: Prefixes such as ``'image_encoder.visual.'``; empty for a
        model without frozen CLIP.
    """
    prefixes = []
    for name, module in _unwrap(model).named_modules():
        if not isinstance(module, FrozenCLIPMixin):
            continue
        for child_name, child in module.named_children():
            params = list(child.parameters())
            if params and not any(p.requires_grad for p in params):
                prefixes.append(f'{name}.{child_name}.' if name else
                                f'{child_name}.')
    return tuple(prefixes)


def frozen_clip_keys(model: nn.Module) -> Tuple[str, ...]:
    """The state-dict keys of ``model`` that the CLIP file restores
    (parameters and buffers of :func:`frozen_clip_prefixes`)."""
    prefixes = frozen_clip_prefixes(model)
    if not prefixes:
        return ()
    return tuple(key for key in _unwrap(model).state_dict()
                 if key.startswith(prefixes))


def is_published(checkpoint: dict) -> bool:
    """Whether ``checkpoint`` (as read from a file) is a published one."""
    meta = checkpoint.get('meta')
    return isinstance(meta, dict) and meta.get('format') == PUBLISHED_FORMAT


def _state_dict_of(checkpoint: dict) -> Dict[str, object]:
    """The state dict of a checkpoint (``state_dict`` or the checkpoint
    itself, as MMEngine accepts), without DDP's ``module.`` prefix."""
    state = checkpoint.get('state_dict', checkpoint)
    return OrderedDict(
        (re.sub(r'^module\.', '', key), value) for key, value in state.items())


def _jsonable(meta: dict, what: str) -> dict:
    """``meta`` as JSON would give it back (tuples become lists), so a
    ``.pth`` and a ``.safetensors`` file carry identical metadata."""
    try:
        return json.loads(json.dumps(meta))
    except TypeError as err:
        raise ValueError(f'{what} must be plain data (JSON types): {err}'
                         ) from err


def _split_meta(model: nn.Module, source_meta: dict) -> dict:
    """Vocabulary and zero-shot split: the segmentor's own (ZegOT), else
    what MMEngine recorded of the training dataset."""
    dataset_meta = source_meta.get('dataset_meta') or {}
    classes = getattr(model, 'class_names', None) or dataset_meta.get(
        'classes')
    seen = getattr(model, 'seen_classes', None) or dataset_meta.get(
        'seen_classes', classes)
    unseen = None
    if classes is not None and seen is not None:
        unseen = [name for name in classes if name not in set(seen)]
    return dict(
        classes=classes,
        seen_classes=seen,
        unseen_classes=unseen,
        zero_shot_split=dataset_meta.get('zero_shot_split'),
        setting=getattr(model, 'setting', None),
        palette=dataset_meta.get('palette'))


def publish_checkpoint(checkpoint: dict,
                       model: nn.Module,
                       keep_frozen: bool = False,
                       cfg_text: Optional[str] = None) -> dict:
    """Make the published form of a training checkpoint.

    Args:
        checkpoint (dict): A checkpoint as read from a file: MMEngine's
            (``state_dict``, ``meta``, ``optimizer``, ...) or a bare state
            dict.
        model (nn.Module): The model built from the checkpoint's config; only
            its structure is read (keys, shapes, frozen CLIP towers).
        keep_frozen (bool): Keep the frozen CLIP weights too (a
            self-contained file). Default: False.
        cfg_text (str, optional): The config ``model`` was built from, as
            text; None takes the checkpoint's ``meta['cfg']``. Default: None.

    Returns:
        dict: ``dict(state_dict=..., meta=...)`` (see the module docstring);
        the tensors are those of ``checkpoint``, not copies.

    Raises:
        ValueError: If ``checkpoint`` is already published, or its state dict
            does not fit ``model`` (another config), naming the keys.
    """
    if is_published(checkpoint):
        raise ValueError('The checkpoint is already published; publish the '
                         'training checkpoint it came from instead.')
    model = _unwrap(model)
    state = _state_dict_of(checkpoint)
    expected = model.state_dict()
    problems = _key_problems(state, expected, allowed_missing=())
    if problems:
        raise ValueError(
            'The checkpoint does not fit the model built from its config: '
            + '; '.join(problems) + '. Give the config it was trained with.')
    prefixes = () if keep_frozen else frozen_clip_prefixes(model)
    kept = OrderedDict((key, state[key]) for key in expected
                       if not key.startswith(prefixes))
    source_meta = checkpoint.get('meta') or {}
    meta = dict(
        format=PUBLISHED_FORMAT,
        format_version=PUBLISHED_FORMAT_VERSION,
        frozen_clip=dict(prefixes=list(frozen_clip_prefixes(model)),
                         included=keep_frozen),
        cfg=source_meta.get('cfg') if cfg_text is None else cfg_text,
        **_split_meta(model, source_meta),
        source={key: source_meta[key] for key in _SOURCE_KEYS
                if key in source_meta},
        versions=dict(mmseg_zegot=__version__, torch=torch.__version__,
                      mmseg=mmseg.__version__, mmengine=mmengine.__version__,
                      open_clip=open_clip.__version__))
    return dict(state_dict=kept, meta=_jsonable(meta, 'The metadata'))


def save_published(published: dict, filename: str) -> None:
    """Write :func:`publish_checkpoint`'s result to ``filename``.

    A name ending in ``.safetensors`` gives a safetensors file: the tensors
    (made contiguous), and in its metadata the ``meta`` dict and the
    non-tensor state-dict entries as JSON strings. Any other name gives a
    ``torch.save`` file. Either is written atomically: an existing
    ``filename`` is replaced only by the complete new file.
    """
    if not filename.endswith('.safetensors'):
        atomic_torch_save(published, filename)
        return
    state = published['state_dict']
    tensors = {key: value.contiguous() for key, value in state.items()
               if isinstance(value, Tensor)}
    extra = {key: value for key, value in state.items()
             if not isinstance(value, Tensor)}
    metadata = {
        'format': 'pt',
        SAFETENSORS_META_KEY: json.dumps(published['meta']),
        SAFETENSORS_EXTRA_KEY: json.dumps(
            _jsonable(extra, 'Non-tensor state-dict entries')),
    }
    atomic_write(filename, safetensors_bytes(tensors, metadata=metadata))


def read_checkpoint(filename: str, map_location='cpu') -> dict:
    """Read a checkpoint file safely (never full unpickling).

    Args:
        filename (str): A ``.safetensors`` file written by
            :func:`save_published`, or a ``torch.save`` file (read with
            :func:`~mmseg_zegot.utils.load_checkpoint_safely`).
        map_location: As for :func:`torch.load`; safetensors files are read
            to the CPU.

    Returns:
        dict: The checkpoint; a safetensors file gives
        ``dict(state_dict=..., meta=...)`` as :func:`publish_checkpoint` made.

    Raises:
        FileNotFoundError: If ``filename`` does not exist.
        ValueError: For a safetensors file without mmseg_zegot metadata.
    """
    filename = osp.expanduser(filename)
    if not filename.endswith('.safetensors'):
        return load_checkpoint_safely(filename, map_location)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'Checkpoint {filename} does not exist.')
    with safe_open(filename, framework='pt', device='cpu') as file:
        metadata = file.metadata() or {}
        state = {key: file.get_tensor(key) for key in file.keys()}
    if SAFETENSORS_META_KEY not in metadata:
        raise ValueError(
            f'{filename} has no {SAFETENSORS_META_KEY!r} metadata, so it is '
            'not a checkpoint published by tools/publish_checkpoint.py.')
    state.update(json.loads(metadata.get(SAFETENSORS_EXTRA_KEY, '{}')))
    return dict(state_dict=state,
                meta=json.loads(metadata[SAFETENSORS_META_KEY]))


def _key_problems(state: dict, expected: dict,
                  allowed_missing) -> List[str]:
    """What keeps ``state`` from loading strictly into a model whose state
    dict is ``expected``, ``allowed_missing`` keys aside."""
    allowed = set(allowed_missing)
    missing = [key for key in expected
               if key not in state and key not in allowed]
    unexpected = [key for key in state if key not in expected]
    present = [key for key in allowed if key in state]
    mismatched = [
        f'{key}: {tuple(state[key].shape)} vs {tuple(value.shape)}'
        for key, value in expected.items()
        if isinstance(value, Tensor) and isinstance(state.get(key), Tensor)
        and state[key].shape != value.shape
    ]
    problems = []
    if missing:
        problems.append(f'missing keys {_listed(missing)}')
    if unexpected:
        problems.append(f'unexpected keys {_listed(unexpected)}')
    if present:
        problems.append('frozen CLIP keys it says it omits '
                        f'{_listed(present)}')
    if mismatched:
        problems.append(f'shape mismatches {_listed(mismatched)}')
    return problems


def _load_frozen_clip(model: nn.Module, filename: str) -> None:
    """Load every frozen CLIP tower of ``model`` from its ``pretrained``.

    Raises:
        ValueError: If a ``pretrained`` is None or cannot be loaded, naming
            the config keys to set (``model.<path of the encoder>``).
    """
    encoders = {f'model.{name}.pretrained': module
                for name, module in model.named_modules()
                if isinstance(module, FrozenCLIPMixin)}
    settings = ', '.join(f'{key}={module.pretrained!r}'
                         for key, module in encoders.items())
    example = ' '.join(f'{key}=/path/to/clip.pth' for key in encoders)
    intro = (f'{filename} is a published checkpoint: it holds the trained '
             'weights only, and the frozen CLIP towers must come from the '
             f'CLIP weights file the config names ({settings}). Set them to '
             f'the local CLIP file, e.g. `--cfg-options {example}`, or '
             'publish with `tools/publish_checkpoint.py --keep-frozen` for a '
             'self-contained file.')
    if any(module.pretrained is None for module in encoders.values()):
        raise ValueError(intro)
    for module in encoders.values():
        try:
            # init_weights() loads the tower; whatever else it initialises
            # (the prompt contexts) is overwritten by the published weights.
            module.init_weights()
        except ValueError as err:
            raise ValueError(f'{intro} Loading CLIP failed: {err}') from err


def _includes_frozen_clip(meta: dict, filename: str) -> bool:
    """``meta['frozen_clip']['included']`` of a published file, checked.

    Raises:
        ValueError: If the metadata lacks it or it is not a bool (a file
            not written by ``tools/publish_checkpoint.py``, or edited).
    """
    frozen = meta.get('frozen_clip')
    included = frozen.get('included') if isinstance(frozen, dict) else None
    if not isinstance(included, bool):
        raise ValueError(
            f'{filename} says it is a published checkpoint (meta.format='
            f'{PUBLISHED_FORMAT!r}) but its metadata has no valid '
            f'frozen_clip.included (got frozen_clip={frozen!r}), so it was '
            'not written by tools/publish_checkpoint.py or was edited. '
            'Publish the training checkpoint again with '
            'tools/publish_checkpoint.py, or load the training checkpoint.')
    return included


def load_segmentor_checkpoint(model: nn.Module,
                              filename: str,
                              map_location='cpu') -> dict:
    """Load a full training checkpoint or a published one, strictly.

    Every key of the model must be in the file and every key of the file in
    the model, with matching shapes, except that a published checkpoint
    without the frozen CLIP weights lacks exactly the frozen CLIP keys; those
    towers are then loaded from their ``pretrained`` files first.

    Args:
        model (nn.Module): The segmentor (a DDP wrapper or test-time
            augmentation model is looked through).
        filename (str): ``.pth`` checkpoint (MMEngine's or published) or
            published ``.safetensors`` file. Read with
            ``weights_only=True``.
        map_location: As for :func:`torch.load`. Default: 'cpu'.

    Returns:
        dict: The checkpoint's ``meta`` (plain data; empty if it has none).

    Raises:
        ValueError: If the keys or shapes do not fit, naming them, or the CLIP
            file a published checkpoint needs is not set or not loadable,
            naming the config keys to set.
    """
    model = _unwrap(model)
    checkpoint = read_checkpoint(filename, map_location)
    state = _state_dict_of(checkpoint)
    meta = checkpoint.get('meta') or {}
    published = is_published(checkpoint)
    needs_clip = published and not _includes_frozen_clip(meta, filename)
    frozen = frozen_clip_keys(model) if needs_clip else ()
    problems = _key_problems(state, model.state_dict(), frozen)
    if problems:
        fix = ('the file is damaged or was published from another config; '
               'publish it again with tools/publish_checkpoint.py'
               if published else 'test it with the config it was trained '
               'with')
        raise ValueError(
            f'Cannot load {filename} into {type(model).__name__}: '
            + '; '.join(problems) + f'. Likely cause: {fix}.')
    if frozen:
        _load_frozen_clip(model, filename)
    result = model.load_state_dict(state, strict=False)
    assert not result.unexpected_keys and set(
        result.missing_keys) == set(frozen), result
    print_log(f'Load checkpoint from {filename}', logger='current')
    return meta
