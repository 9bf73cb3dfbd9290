# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Build open_clip CLIP models and load their weights, offline and safely.

open_clip (MIT licence) builds the architectures; this module adds what a
frozen-CLIP segmentor needs around it:

* :func:`build_clip` builds the architecture only (random init, never a
  download) with the activation the weights were trained with: OpenAI's
  CLIP was trained with QuickGELU, most others with GELU, and a build with
  the other one loads the weights without error but computes wrong
  features. The weights tell when they can (:func:`recorded_quick_gelu`:
  TorchScript archives, open_clip tags, files written by
  :func:`save_clip_weights`); a setting that contradicts them is refused,
  and a plain state dict that records nothing needs ``quick_gelu`` set.
* :func:`load_clip_state_dict` reads a CLIP checkpoint from a local file
  (plain state dict with ``torch.load(weights_only=True)``, ``.safetensors``,
  or OpenAI's original TorchScript archive) or resolves an open_clip
  pretrained tag from the local cache only.
* :func:`load_clip_weights` loads one tower strictly, naming every missing,
  unexpected or mis-shaped key.
* :func:`check_quick_gelu` checks the activations of a built tower.

The state-dict handling follows ``open_clip.factory.load_state_dict`` and
``load_checkpoint`` (``open_clip`` 3.3): ``state_dict`` nesting, ``module.``
prefixes, the extra ``input_resolution``/``context_length``/``vocab_size``
entries of OpenAI archives and the ``logit_scale``/``logit_bias`` shape
fix-ups. open_clip's ``resize_pos_embed`` is deliberately not applied: the
image encoder interpolates positional embeddings at forward time from the
pretraining grid, so a checkpoint whose grid differs from the config's is a
configuration error, reported as such, not something to resample silently.
"""
import copy
import difflib
import json
import os.path as osp
import warnings
import zipfile
from collections.abc import Mapping
from typing import Dict, Optional, Union

import open_clip
import torch
from huggingface_hub import try_to_load_from_cache
from mmengine.logging import print_log
from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME
from open_clip.pretrained import get_pretrained_cfg, list_pretrained_tags_by_model
from open_clip.transformer import QuickGELU
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

__all__ = [
    'QUICK_GELU_KEY', 'FrozenCLIPMixin', 'build_clip', 'check_quick_gelu',
    'is_openai_weights', 'is_torchscript_archive', 'load_clip_state_dict',
    'load_clip_weights', 'recorded_quick_gelu', 'save_clip_weights'
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


def _decide_quick_gelu(cfg: dict, quick_gelu: Optional[bool],
                       pretrained: Optional[str], model_name: str) -> bool:
    """The activation to build.

    Two things record the activation the weights were trained with: the
    weights themselves (:func:`recorded_quick_gelu`, or a ``*-quickgelu``
    model name) and the model config's ``quick_gelu`` (open_clip's
    ``*-quickgelu`` configs, the toy CLIP's saved config). The setting
    ``quick_gelu`` and the records must all agree; with none of them the
    weights must be an open_clip tag or absent (GELU, open_clip's default):
    a local file that records nothing needs the setting.

    Raises:
        ValueError: Naming the two that disagree, or the setting to give.
    """
    weights = recorded_quick_gelu(pretrained, model_name)
    if weights is None and model_name.endswith('-quickgelu'):
        weights = True
    records = [(source, value) for source, value in (
        (_weights_source(pretrained, model_name, weights), weights),
        ("`model_cfg`'s `quick_gelu`", cfg.get('quick_gelu')))
        if value is not None]
    stated = ([('`quick_gelu`', quick_gelu)]
              if quick_gelu is not None else records[1:])
    for key, value in stated:
        for source, recorded in records:
            if source != key and bool(value) != bool(recorded):
                raise ValueError(_contradiction(key, value, source,
                                                bool(recorded)))
    if stated or records:
        return bool((stated or records)[0][1])
    if pretrained is not None and osp.isfile(osp.expanduser(pretrained)):
        raise ValueError(
            f'pretrained={pretrained!r} is a plain state dict that does not '
            'record the activation its CLIP was trained with, and '
            '`quick_gelu` is not set: a wrong guess loads without error and '
            'computes wrong features. Set `quick_gelu=True` for OpenAI '
            'weights (and others trained with QuickGELU), False for GELU '
            'ones (e.g. LAION, the toy CLIP), or save the file with '
            'mmseg_zegot.models.utils.save_clip_weights(..., quick_gelu=...)'
            '.')
    return False


def _weights_source(pretrained: Optional[str], model_name: str,
                    recorded: Optional[bool]) -> str:
    """How the weights' record reads in a message."""
    weights = f'pretrained={pretrained!r} (model_name={model_name!r})'
    if recorded:
        return (f'{weights} are OpenAI CLIP weights (or others trained with '
                'QuickGELU)')
    return f'{weights} records that its CLIP was trained with GELU'


def _contradiction(key: str, value: bool, source: str,
                   recorded: bool) -> str:
    """The message for a setting that contradicts a record."""
    if source.startswith('`model_cfg`'):
        source += f' is {recorded}'
    built = 'QuickGELU' if value else 'GELU'
    drop = ('' if key == '`quick_gelu`' else
            f", and drop 'quick_gelu': {value} from `model_cfg`")
    return (f'{key} is {bool(value)}, but {source}: a {built} model loads '
            'the weights without error and computes wrong features. Set '
            f'`quick_gelu=None` (auto) or {recorded}{drop}.')


def build_clip(model_name: str = 'ViT-B-16',
               model_cfg: Union[dict, str, None] = None,
               quick_gelu: Optional[bool] = None,
               pretrained: Optional[str] = None) -> open_clip.CLIP:
    """Build an open_clip ``CLIP`` architecture (random init, no download).

    Args:
        model_name (str): An open_clip model name (``open_clip.list_models()``).
            With ``model_cfg`` it only names the model for pretrained tags.
            Default: 'ViT-B-16'.
        model_cfg (dict | str, optional): An open_clip model config
            (``embed_dim``, ``vision_cfg``, ``text_cfg``, ...), inline or as
            the path of a JSON file, used instead of the named one.
            Default: None.
        quick_gelu (bool, optional): Use QuickGELU. None decides from the
            weights (:func:`recorded_quick_gelu`), else from the model
            config's own ``quick_gelu``; a local state dict that records
            nothing needs one of the two set. Default: None.
        pretrained (str, optional): The weights that will be loaded (a local
            file or an open_clip tag); only read to decide ``quick_gelu``.
            Default: None.

    Returns:
        open_clip.CLIP: The model, randomly initialised.

    Raises:
        ValueError: For an unknown ``model_name``, an unsupported config
            (custom/HF text towers, timm image towers), a ``quick_gelu``
            (setting or model config) that contradicts what the weights
            record, or none for a local file that records nothing.
    """
    cfg = _model_config(model_name, model_cfg)
    cfg['quick_gelu'] = _decide_quick_gelu(cfg, quick_gelu, pretrained,
                                           model_name)
    try:
        return open_clip.CLIP(**cfg)
    except TypeError as err:
        raise ValueError(
            f'Invalid open_clip config for model_name={model_name!r}: {err}. '
            'Check `model_cfg` against open_clip.model.CLIPVisionCfg / '
            'CLIPTextCfg.') from err


def _read_json_config(path: str) -> dict:
    """An open_clip model config from a JSON file (open_clip's own format,
    optionally nested under ``model_cfg`` as in its ``local-dir`` configs)."""
    if not osp.isfile(path):
        raise ValueError(f'`model_cfg` is a path, but {path!r} is not a file; '
                         'give an open_clip model config dict or JSON file.')
    with open(path, encoding='utf-8') as file:
        try:
            cfg = json.load(file)
        except json.JSONDecodeError as err:
            raise ValueError(f'`model_cfg` file {path!r} is not valid JSON: '
                             f'{err}') from err
    return cfg.get('model_cfg', cfg)


def _model_config(model_name: str, model_cfg: Union[dict, str, None]) -> dict:
    """Return a copy of the model config and reject unsupported towers."""
    if isinstance(model_cfg, str):
        model_cfg = _read_json_config(model_cfg)
    if model_cfg is not None:
        cfg = copy.deepcopy(dict(model_cfg))
        missing = {'embed_dim', 'vision_cfg', 'text_cfg'} - cfg.keys()
        if missing:
            raise ValueError(
                f'`model_cfg` lacks {sorted(missing)}: it must be a full '
                'open_clip model config (embed_dim, vision_cfg, text_cfg), '
                'like the JSON files in open_clip/model_configs.')
    else:
        if model_name.startswith('hf-hub:'):
            raise ValueError(
                f'model_name={model_name!r} needs a download from the Hugging '
                'Face Hub, which is not possible here. Use a built-in name '
                '(open_clip.list_models()) or pass the config inline as '
                '`model_cfg`.')
        cfg = open_clip.get_model_config(model_name)
        if cfg is None:
            close = difflib.get_close_matches(model_name,
                                              open_clip.list_models(), n=3)
            hint = f' Did you mean {close}?' if close else ''
            raise ValueError(
                f'Unknown open_clip model_name={model_name!r}.{hint} Valid '
                'names: `python -c "import open_clip; '
                'print(open_clip.list_models())"`, or pass an inline '
                '`model_cfg`.')
    text_cfg, vision_cfg = cfg['text_cfg'], cfg['vision_cfg']
    if (cfg.pop('custom_text', False) or 'multimodal_cfg' in cfg
            or text_cfg.get('hf_model_name')):
        raise ValueError(
            f'model_name={model_name!r} uses a custom or Hugging Face text '
            "tower (open_clip's CustomTextCLIP/CoCa); only open_clip's CLIP "
            'class with its built-in text transformer is supported.')
    if vision_cfg.get('timm_model_name'):
        raise ValueError(
            f'model_name={model_name!r} uses a timm image tower '
            f"({vision_cfg['timm_model_name']!r}); only open_clip's own "
            'VisionTransformer is supported.')
    return cfg


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


def check_quick_gelu(module: nn.Module) -> None:
    """Check that every MLP activation of ``module`` is QuickGELU.

    Raises:
        ValueError: If ``module`` has a GELU or no QuickGELU at all, naming
            the ``quick_gelu`` setting that fixes it.
    """
    gelus = [name for name, sub in module.named_modules()
             if isinstance(sub, nn.GELU)]
    has_quick = any(isinstance(sub, QuickGELU) for sub in module.modules())
    if gelus or not has_quick:
        where = f'GELU at {gelus[:3]}' if gelus else 'no QuickGELU found'
        raise ValueError(
            f'OpenAI CLIP weights need QuickGELU activations, but the model '
            f'has {where}: it would compute wrong features. Build it with '
            '`quick_gelu=None` (auto) or True, or use a *-quickgelu '
            'model_name.')


class FrozenCLIPMixin:
    """What every module wrapping a frozen open_clip tower shares.

    * A parent's ``init_cfg`` cannot re-initialise CLIP: mmengine's
      ``BaseModule.init_weights`` applies a parent's ``init_cfg`` to the whole
      tree, then calls ``init_weights`` of every child not marked
      initialised; ``is_init`` is never True here, so the frozen weights
      always come back from ``pretrained``.
    * :meth:`load_frozen_clip` loads the tower strictly and checks QuickGELU
      for OpenAI weights; missing weights are an error, never a random CLIP.
    * The activation is recorded in the state dict (extra state), so a
      checkpoint cannot meet a model built with the other one, e.g. when the
      ``pretrained`` file that auto-detection reads is absent at test time.

    Put it before ``BaseModule`` in the bases and call :meth:`freeze_clip` in
    ``__init__``. ``cfg_key`` names the module in configs, for messages.
    """

    cfg_key = 'model'

    @property
    def is_init(self) -> bool:
        """Always False, so a parent's ``init_weights`` reloads CLIP."""
        return False

    @is_init.setter
    def is_init(self, value: bool) -> None:
        """Ignored: see the getter."""

    def freeze_clip(self, tower: nn.Module) -> None:
        """Freeze ``tower`` (no gradients, eval mode) and record whether it
        was built with QuickGELU."""
        tower.requires_grad_(False)
        tower.eval()
        self._uses_quick_gelu = any(
            isinstance(module, QuickGELU) for module in tower.modules())

    def load_frozen_clip(self, tower: nn.Module, tower_name: str) -> None:
        """Load ``tower`` ('visual' or 'text') from ``self.pretrained``.

        Raises:
            ValueError: If ``pretrained`` is None, the file cannot be loaded
                into this architecture, or OpenAI weights meet a GELU build.
        """
        if self.pretrained is None:
            raise ValueError(
                f'{type(self).__name__}.init_weights() needs CLIP weights (a '
                f'random CLIP is never used silently): set '
                f'`{self.cfg_key}.pretrained` to a local CLIP checkpoint file '
                '(nothing can be downloaded).')
        load_clip_weights(tower, self.pretrained, model_name=self.model_name,
                          tower=tower_name)
        if is_openai_weights(self.pretrained, self.model_name):
            check_quick_gelu(tower)
        print_log(
            f'{type(self).__name__}: loaded the {self.model_name} '
            f'{tower_name} tower from {self.pretrained}.', logger='current')

    def get_extra_state(self) -> Tensor:
        """Record the activation, so a checkpoint cannot meet another one.

        Returns:
            Tensor: A 0-dim bool tensor, True for QuickGELU. A tensor, not a
            Python value: MMEngine broadcasts every state-dict entry from
            rank 0 after ``init_weights()`` in distributed training, and
            that only works for tensors.
        """
        return torch.tensor(self._uses_quick_gelu)

    def set_extra_state(self, state: Union[Tensor, Mapping]) -> None:
        """Refuse a checkpoint made with the other activation.

        Args:
            state (Tensor | Mapping): :meth:`get_extra_state`'s tensor, or
                ``{'quick_gelu': bool}`` as earlier versions saved it.

        Raises:
            ValueError: If the checkpoint's ``quick_gelu`` differs from this
                model's, naming the config key that fixes it.
        """
        quick_gelu = bool(state['quick_gelu'] if isinstance(state, Mapping)
                          else state)
        if quick_gelu != self._uses_quick_gelu:
            raise ValueError(
                f'The checkpoint was made with quick_gelu={quick_gelu} but '
                f'this {type(self).__name__} was built with quick_gelu='
                f'{self._uses_quick_gelu}. Set `{self.cfg_key}.quick_gelu='
                f'{quick_gelu}` (auto-detection needs the pretrained file, '
                'which may be absent here).')
