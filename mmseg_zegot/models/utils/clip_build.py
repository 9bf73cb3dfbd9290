# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Build open_clip CLIP architectures offline, with the right activation.

open_clip (MIT licence) builds the architectures; :func:`build_clip` builds
one (random init, never a download) with the activation the weights were
trained with: OpenAI's CLIP was trained with QuickGELU, most others with
GELU, and a build with the other one loads the weights without error but
computes wrong features. The weights tell when they can
(:func:`~.clip_checkpoint.recorded_quick_gelu`); a setting that contradicts
them is refused, and a plain state dict that records nothing needs
``quick_gelu`` set. :func:`check_quick_gelu` checks the activations of a
built tower.
"""
import copy
import difflib
import json
import os.path as osp
from typing import Optional, Union

import open_clip
from open_clip.transformer import QuickGELU
from torch import nn

from .clip_checkpoint import recorded_quick_gelu

__all__ = ['build_clip', 'check_quick_gelu']


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
