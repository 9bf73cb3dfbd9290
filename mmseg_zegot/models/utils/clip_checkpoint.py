# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""CLIP checkpoint formats: read, record and strictly load CLIP weights,
offline and safely.

* :func:`load_clip_state_dict` reads a CLIP checkpoint from a local file
  (plain state dict with ``torch.load(weights_only=True)``, ``.safetensors``,
  or OpenAI's original TorchScript archive) or resolves an open_clip
  pretrained tag from the local cache only.
* :func:`load_clip_weights` loads one tower strictly, naming every missing,
  unexpected or mis-shaped key.
* :func:`recorded_quick_gelu` / :func:`is_openai_weights` read which
  activation the weights were trained with, as far as they tell
  (TorchScript archives, open_clip tags, files written by
  :func:`save_clip_weights`); :mod:`.clip_build` builds accordingly.

The state-dict handling follows ``open_clip.factory.load_state_dict`` and
``load_checkpoint`` (``open_clip`` 3.3, MIT licence): ``state_dict``
nesting, ``module.`` prefixes, the extra ``input_resolution``/
``context_length``/``vocab_size`` entries of OpenAI archives and the
``logit_scale``/``logit_bias`` shape fix-ups. open_clip's
``resize_pos_embed`` is deliberately not applied: the image encoder
interpolates positional embeddings at forward time from the pretraining
grid, so a checkpoint whose grid differs from the config's is a
configuration error, reported as such, not something to resample silently.
"""
import os.path as osp
import warnings
import zipfile
from collections.abc import Mapping
from typing import Dict, Optional

import torch
from huggingface_hub import try_to_load_from_cache
from mmengine.logging import print_log
from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME
from open_clip.pretrained import get_pretrained_cfg, list_pretrained_tags_by_model
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

__all__ = [
    'QUICK_GELU_KEY', 'is_openai_weights', 'is_torchscript_archive',
    'load_clip_state_dict', 'load_clip_weights', 'recorded_quick_gelu',
    'save_clip_weights'
]

#: Where a CLIP weights file records whether its CLIP was trained with
#: QuickGELU: a top-level bool of a ``torch.save`` dict (next to
#: ``state_dict``) or a ``'true'``/``'false'`` entry of a ``.safetensors``
#: file's metadata (:func:`save_clip_weights`).
QUICK_GELU_KEY = 'quick_gelu'
#: Non-tensor entries of OpenAI's TorchScript archives (see open_clip's
#: ``build_model_from_openai_state_dict``).
_OPENAI_EXTRA_KEYS = ('input_resolution', 'context_length', 'vocab_size')
#: Where open_clip caches files downloaded from a URL (``download_pretrained``).
_OPENAI_URL_CACHE = osp.join('~', '.cache', 'clip')
_TOWERS = ('visual', 'text')
_MAX_LISTED_KEYS = 8


def is_torchscript_archive(path: str) -> bool:
    """Whether ``path`` is a TorchScript archive (the format OpenAI ships).

    Reads only the zip directory: a TorchScript archive holds ``code/`` and
    ``constants.pkl`` next to its data, a ``torch.save`` file does not.
    """
    if not osp.isfile(path) or not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile:  # reading it as a checkpoint will say why
        return False
    return any(name.split('/', 1)[-1] == 'constants.pkl'
               or name.split('/', 1)[-1].startswith('code/') for name in names)


def is_openai_weights(pretrained: Optional[str], model_name: str = '') -> bool:
    """Whether ``pretrained`` denotes weights trained with QuickGELU.

    True for OpenAI's CLIP weights, recognised by the tag ``'openai'``, by a
    file that is a TorchScript archive (OpenAI's original format) or by a
    ``*-quickgelu`` model name, and for every other open_clip pretrained tag
    that open_clip registers with ``quick_gelu=True`` (e.g. MetaCLIP, DFN).
    A plain state-dict file carries no such mark: name a ``*-quickgelu``
    model (or set ``quick_gelu=True``) for OpenAI weights saved that way.

    Args:
        pretrained (str, optional): A local file path or an open_clip tag.
        model_name (str): The open_clip model name. Default: ''.
    """
    if pretrained is None:
        return False
    if model_name.endswith('-quickgelu'):
        return True
    path = osp.expanduser(pretrained)
    if osp.isfile(path):
        return is_torchscript_archive(path)
    return (pretrained.lower() == 'openai' or bool(
        get_pretrained_cfg(model_name, pretrained).get('quick_gelu', False)))


def _file_record(path: str) -> Optional[bool]:
    """The activation a local weights file records (:data:`QUICK_GELU_KEY`),
    or None; a file that cannot be read is left to the loader to report."""
    if path.endswith('.safetensors'):
        try:
            with safe_open(path, framework='pt') as file:
                value = (file.metadata() or {}).get(QUICK_GELU_KEY)
        except Exception:  # safetensors raises its own error types
            return None
        return {'true': True, 'false': False}.get(value)
    for mmap in (True, False):  # mmap: only the record is read
        try:
            checkpoint = torch.load(path, map_location='cpu',
                                    weights_only=True, mmap=mmap)
            break
        except Exception:  # not a zip file (mmap), pickle or EOF errors
            checkpoint = None
    value = (checkpoint.get(QUICK_GELU_KEY)
             if isinstance(checkpoint, Mapping) else None)
    return value if isinstance(value, bool) else None


def recorded_quick_gelu(pretrained: Optional[str],
                        model_name: str = '') -> Optional[bool]:
    """Whether the weights ``pretrained`` were trained with QuickGELU, as far
    as they tell.

    Args:
        pretrained (str, optional): A local file path or an open_clip tag.
        model_name (str): The open_clip model name (resolves tags).
            Default: ''.

    Returns:
        bool | None: True for OpenAI's TorchScript archive; for an open_clip
        tag, whether open_clip registers it with QuickGELU (OpenAI, MetaCLIP,
        DFN, ...); for a plain state-dict file, its record
        (:data:`QUICK_GELU_KEY`, written by :func:`save_clip_weights`) if it
        has one. None when the weights cannot tell: a plain state dict
        without the record, or no such file here.
    """
    if pretrained is None:
        return None
    path = osp.expanduser(pretrained)
    if osp.isfile(path):
        return True if is_torchscript_archive(path) else _file_record(path)
    tag_cfg = get_pretrained_cfg(model_name, pretrained)
    if not tag_cfg:
        return None
    return pretrained.lower() == 'openai' or bool(
        tag_cfg.get('quick_gelu', False))


def save_clip_weights(state_dict: Dict[str, Tensor], filename: str,
                      quick_gelu: bool) -> None:
    """Save a CLIP state dict with the activation it was trained with, so
    that :func:`build_clip` can check it (a plain state dict cannot tell).

    Args:
        state_dict (dict[str, Tensor]): open_clip's key names.
        filename (str): ``*.safetensors`` (the record in the metadata) or
            any other name (``torch.save`` of
            ``dict(state_dict=..., quick_gelu=...)``).
        quick_gelu (bool): True for OpenAI's weights and others trained with
            QuickGELU.
    """
    if filename.endswith('.safetensors'):
        save_file({key: value.contiguous() for key, value in
                   state_dict.items()}, filename,
                  metadata={QUICK_GELU_KEY: str(bool(quick_gelu)).lower()})
    else:
        torch.save({'state_dict': state_dict,
                    QUICK_GELU_KEY: bool(quick_gelu)}, filename)


def load_clip_state_dict(pretrained: str, model_name: str) -> Dict[str, Tensor]:
    """Read a full CLIP state dict in open_clip's key format.

    Args:
        pretrained (str): A local file: a plain state dict saved with
            ``torch.save`` (``.pt``/``.pth``/``.bin``, possibly nested under
            ``'state_dict'`` or ``'model'``), a ``.safetensors`` file, or
            OpenAI's original TorchScript archive. Or an open_clip pretrained
            tag (e.g. ``'openai'``) whose file is already in the local cache.
        model_name (str): The open_clip model name (resolves tags).

    Returns:
        dict[str, Tensor]: The state dict on CPU, dtypes as stored.

    Raises:
        ValueError: If the file is missing or not a checkpoint, or a tag's
            file is not cached.
    """
    return _read_state_dict(_resolve_pretrained(pretrained, model_name),
                            pretrained)


def _resolve_pretrained(pretrained: str, model_name: str) -> str:
    """Return the local file for ``pretrained`` (a path or a cached tag)."""
    path = osp.expanduser(pretrained)
    if osp.exists(path):
        if not osp.isfile(path):
            raise ValueError(
                f'pretrained={pretrained!r}: {path} is not a file. Set '
                '`pretrained` to a CLIP checkpoint file.')
        return path
    tag_cfg = get_pretrained_cfg(model_name, pretrained)
    if not tag_cfg:
        tags = list_pretrained_tags_by_model(model_name)
        raise ValueError(
            f'pretrained={pretrained!r}: no such file ({osp.abspath(path)}) '
            f'and not an open_clip pretrained tag of model_name='
            f'{model_name!r} (tags: {tags}). Set `pretrained` to an existing '
            'local CLIP checkpoint file.')
    candidates = []
    if 'file' in tag_cfg:
        candidates.append(tag_cfg['file'])
    hf_hub = tag_cfg.get('hf_hub', '')
    if hf_hub:
        repo_id, filename = osp.split(hf_hub)
        filename = filename or HF_WEIGHTS_NAME
        names = [filename] + ([HF_SAFE_WEIGHTS_NAME]
                              if filename == HF_WEIGHTS_NAME else [])
        for name in names:
            cached = try_to_load_from_cache(repo_id, name)
            candidates.append(cached if isinstance(cached, str) else '')
    url = tag_cfg.get('url', '')
    if url:
        candidates.append(
            osp.join(osp.expanduser(_OPENAI_URL_CACHE), osp.basename(url)))
    for candidate in candidates:
        if candidate and osp.isfile(candidate):
            return candidate
    source = url or f'https://huggingface.co/{hf_hub}'
    raise ValueError(
        f'pretrained={pretrained!r} is an open_clip tag of model_name='
        f'{model_name!r} whose weights are not in the local cache (Hugging '
        f'Face cache, {_OPENAI_URL_CACHE}), and nothing can be downloaded '
        f'here. Download the file elsewhere ({source}), copy it to this '
        'machine and set `pretrained` to its local path, e.g. '
        '--cfg-options model.image_encoder.pretrained=/path/to/file '
        'model.text_encoder.pretrained=/path/to/file.')


def _read_state_dict(path: str, pretrained: str) -> Dict[str, Tensor]:
    """Read the CLIP state dict stored in the local file ``path``."""
    what = f'pretrained={pretrained!r} ({path})'
    if path.endswith('.safetensors'):
        try:
            return load_file(path, device='cpu')
        except Exception as err:  # safetensors raises its own error types
            raise ValueError(
                f'{what} is not a readable .safetensors file: {err}') from err
    if is_torchscript_archive(path):
        return _read_torchscript(path, what)
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # pickle, zip and EOF errors alike
        raise ValueError(
            f'{what} could not be read with torch.load(weights_only=True): '
            f'{err}. Expected a CLIP checkpoint: a state dict saved with '
            'torch.save, a .safetensors file or OpenAI\'s TorchScript '
            'archive. Files that need weights_only=False are refused (they '
            'can run code); re-save such a file you trust as a plain state '
            'dict of tensors.') from err
    if isinstance(checkpoint, Mapping):
        for key in ('state_dict', 'model'):
            if isinstance(checkpoint.get(key), Mapping):
                checkpoint = checkpoint[key]
                break
    if (not isinstance(checkpoint, Mapping) or not checkpoint or not all(
            isinstance(value, Tensor) for value in checkpoint.values())):
        raise ValueError(
            f'{what} is not a state dict (a mapping of names to tensors, '
            "possibly under 'state_dict' or 'model'), so it is not a CLIP "
            'checkpoint.')
    if all(key.startswith('module.') for key in checkpoint):
        return {key[len('module.'):]: value for key, value in checkpoint.items()}
    return dict(checkpoint)


def _read_torchscript(path: str, what: str) -> Dict[str, Tensor]:
    """Convert OpenAI's TorchScript archive to a plain state dict."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', category=FutureWarning,
                                    message=r'`torch\.jit\.load` is deprecated')
            archive = torch.jit.load(path, map_location='cpu')
    except RuntimeError as err:
        raise ValueError(
            f'{what} looks like a TorchScript archive but could not be '
            f'loaded: {err}') from err
    state_dict = {key: value for key, value in archive.state_dict().items()
                  if key not in _OPENAI_EXTRA_KEYS}
    print_log(
        f'{what} is a TorchScript archive (OpenAI\'s original CLIP format); '
        f'converted it to a plain state dict of {len(state_dict)} tensors. '
        'To skip this conversion, save that dict once with its activation '
        '(mmseg_zegot.models.utils.save_clip_weights(load_clip_state_dict('
        '...), "clip.pth", quick_gelu=True)) and point `pretrained` at it.',
        logger='current')
    return state_dict


def load_clip_weights(target: nn.Module, pretrained: str, *, model_name: str,
                      tower: str) -> None:
    """Load one tower of a CLIP checkpoint strictly into ``target``.

    Args:
        target (nn.Module): For ``tower='visual'`` an open_clip
            ``VisionTransformer`` (it receives the ``visual.*`` keys with the
            prefix stripped); for ``tower='text'`` an open_clip ``CLIP`` whose
            ``visual`` was removed or set to None (it receives every other
            key).
        pretrained (str): See :func:`load_clip_state_dict`.
        model_name (str): The open_clip model name (tags, error messages).
        tower (str): ``'visual'`` or ``'text'``.

    Raises:
        ValueError: If the file cannot be read, or any key is missing,
            unexpected or of another shape (all named, with both shapes).
    """
    if tower not in _TOWERS:
        raise ValueError(f'`tower` must be one of {_TOWERS}, got {tower!r}.')
    path = _resolve_pretrained(pretrained, model_name)
    full = _read_state_dict(path, pretrained)
    if tower == 'visual':
        state_dict = {key[len('visual.'):]: value
                      for key, value in full.items()
                      if key.startswith('visual.')}
    else:
        if getattr(target, 'visual', None) is not None:
            raise ValueError(
                "load_clip_weights(tower='text') expects a CLIP whose "
                '`visual` was removed (del clip.visual) or set to None.')
        state_dict = {key: value for key, value in full.items()
                      if not key.startswith('visual.')}
        _fix_logit_params(target, state_dict)
    expected = target.state_dict()
    # Non-persistent buffers (e.g. the text causal mask) are rebuilt by the
    # model; TorchScript archives export them anyway.
    for name, _ in target.named_buffers():
        if name not in expected:
            state_dict.pop(name, None)
    _check_keys(expected, state_dict, tower=tower, path=path,
                pretrained=pretrained, model_name=model_name)
    target.load_state_dict(state_dict, strict=True)


def _fix_logit_params(target: nn.Module, state_dict: Dict[str, Tensor]) -> None:
    """open_clip's ``logit_scale``/``logit_bias`` fix-ups (``load_checkpoint``)."""
    for key in ('logit_scale', 'logit_bias'):
        ours = getattr(target, key, None)
        theirs = state_dict.get(key)
        if (ours is not None and theirs is not None
                and theirs.shape != ours.shape
                and theirs.numel() == ours.numel()):
            state_dict[key] = theirs.reshape(ours.shape)
    if (getattr(target, 'logit_bias', None) is not None
            and 'logit_bias' not in state_dict and 'logit_scale' in state_dict):
        state_dict['logit_bias'] = torch.zeros_like(state_dict['logit_scale'])


def _check_keys(expected: Dict[str, Tensor], state_dict: Dict[str, Tensor], *,
                tower: str, path: str, pretrained: str,
                model_name: str) -> None:
    """Raise one ValueError naming every key that would not load."""
    prefix = 'visual.' if tower == 'visual' else ''
    missing = sorted(expected.keys() - state_dict.keys())
    unexpected = sorted(state_dict.keys() - expected.keys())
    mismatched = sorted(
        key for key in expected.keys() & state_dict.keys()
        if expected[key].shape != state_dict[key].shape)
    if not (missing or unexpected or mismatched):
        return

    def listed(keys, describe=lambda key: f'{prefix}{key}'):
        shown = [describe(key) for key in keys[:_MAX_LISTED_KEYS]]
        more = len(keys) - len(shown)
        return ', '.join(shown) + (f' and {more} more' if more else '')

    problems = []
    if mismatched:
        problems.append('shape mismatch: ' + listed(
            mismatched, lambda key: f'{prefix}{key} (file '
            f'{tuple(state_dict[key].shape)} vs model '
            f'{tuple(expected[key].shape)})'))
    if missing:
        problems.append(f'missing from the file: {listed(missing)}')
    if unexpected:
        problems.append(f'unexpected in the file: {listed(unexpected)}')
    hint = ('the file holds weights for another architecture: set '
            '`model_name` (or `model_cfg`) to the architecture the weights '
            'were trained with')
    if not state_dict:
        hint = (f'the file has no {tower}-tower keys: `pretrained` must be a '
                'full CLIP checkpoint (both towers, open_clip key names)')
    elif 'positional_embedding' in mismatched and tower == 'visual':
        hint += (' (if only visual.positional_embedding differs, set '
                 'vision_cfg.image_size to the size the weights were '
                 'pretrained at: inputs of any size are handled by '
                 'interpolating at forward time)')
    raise ValueError(
        f'Cannot load the {tower} tower of pretrained={pretrained!r} ({path}) '
        f'into model_name={model_name!r}: ' + '; '.join(problems)
        + f'. Likely cause: {hint}.')
