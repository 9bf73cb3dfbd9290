# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Tests of the open_clip build and CLIP checkpoint utilities
(``clip_build``, ``clip_checkpoint``)."""
import os.path as osp
import warnings

import huggingface_hub.constants
import open_clip
import pytest
import torch
from open_clip.transformer import QuickGELU
from safetensors.torch import save_file
from torch import nn

from mmseg_zegot.models.utils import (
    build_clip,
    check_quick_gelu,
    clip_checkpoint,
    is_openai_weights,
    is_torchscript_archive,
    load_clip_state_dict,
    load_clip_weights,
    recorded_quick_gelu,
    save_clip_weights,
)


class NotATensor:
    """A class a weights-only unpickler refuses."""


def tiny_state_dict(cfg, seed=0, quick_gelu=False):
    torch.manual_seed(seed)
    return build_clip('tiny', model_cfg=cfg, quick_gelu=quick_gelu).state_dict()


def save_torchscript_archive(cfg, path, seed=0):
    """Write a tiny CLIP the way OpenAI ships CLIP: a TorchScript archive.

    Like OpenAI's archives, its state dict has ``input_resolution``,
    ``context_length`` and ``vocab_size`` entries next to the weights (and
    TorchScript exports the non-persistent text ``attn_mask`` too).
    """
    torch.manual_seed(seed)
    model = build_clip('tiny', model_cfg=cfg, quick_gelu=True).eval()
    expected = {key: value.clone() for key, value in model.state_dict().items()}
    del model.context_length, model.vocab_size
    model.register_buffer('input_resolution', torch.tensor(32))
    model.register_buffer('context_length', torch.tensor(77))
    model.register_buffer('vocab_size', torch.tensor(49408))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', FutureWarning)
        torch.jit.save(torch.jit.script(model), str(path))
    return expected


def assert_state_dicts_equal(actual, expected):
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        torch.testing.assert_close(actual[key], value, rtol=0, atol=0)


def activations(module):
    return {type(m) for m in module.modules() if isinstance(m, (nn.GELU, QuickGELU))}


# --------------------------------------------------------------- build_clip
def test_build_clip_from_inline_config(tiny_clip_cfg):
    model = build_clip('tiny', model_cfg=tiny_clip_cfg)
    assert isinstance(model, open_clip.CLIP)
    assert model.visual.transformer.width == 64
    assert model.visual.proj.shape == (64, 32)
    assert activations(model) == {nn.GELU}
    assert activations(build_clip('tiny', tiny_clip_cfg, quick_gelu=True)) == {
        QuickGELU}


@pytest.mark.parametrize('model_name,pretrained', [
    ('ViT-B-16', 'openai'),
    ('ViT-B-16', 'OpenAI'),
    ('ViT-B-16-quickgelu', 'some_file_or_tag'),
    ('ViT-B-16', 'metaclip_400m'),  # registered by open_clip as QuickGELU
])
def test_quick_gelu_auto_for_quick_gelu_weights(tiny_clip_cfg, model_name,
                                                pretrained):
    assert is_openai_weights(pretrained, model_name)
    model = build_clip(model_name, model_cfg=tiny_clip_cfg,
                       pretrained=pretrained)
    assert activations(model) == {QuickGELU}


def test_quick_gelu_auto_off_for_other_weights(tiny_clip_cfg, tmp_path):
    path = tmp_path / 'plain.pth'
    torch.save(tiny_state_dict(tiny_clip_cfg), path)
    assert not is_openai_weights(None, 'ViT-B-16')
    assert not is_openai_weights('laion2b_s34b_b88k', 'ViT-B-16')
    assert not is_openai_weights(str(path), 'ViT-B-16')
    model = build_clip('ViT-B-16', tiny_clip_cfg,
                       pretrained='laion2b_s34b_b88k')
    assert activations(model) == {nn.GELU}


def test_named_config_builds_without_downloading(monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError('build_clip tried to download')

    monkeypatch.setattr(open_clip.factory, 'download_pretrained', no_download)
    monkeypatch.setattr(open_clip.pretrained, 'hf_hub_download', no_download)
    model = build_clip('RN50-quickgelu')  # the named config's quick_gelu kept
    assert isinstance(model, open_clip.CLIP)
    assert activations(model) == {QuickGELU}


@pytest.mark.parametrize('where', ['argument', 'model_cfg'])
def test_quick_gelu_false_with_openai_weights_is_an_error(tiny_clip_cfg, where):
    kwargs = dict(quick_gelu=False)
    if where == 'model_cfg':
        tiny_clip_cfg['quick_gelu'] = False
        kwargs = {}
    with pytest.raises(ValueError, match='`quick_gelu` is False.*QuickGELU'):
        build_clip('ViT-B-16', tiny_clip_cfg, pretrained='openai', **kwargs)


def test_quick_gelu_auto_for_torchscript_archive(tiny_clip_cfg, tmp_path):
    path = tmp_path / 'ViT-tiny.pt'
    save_torchscript_archive(tiny_clip_cfg, path)
    assert is_torchscript_archive(str(path))
    assert is_openai_weights(str(path), 'tiny')
    assert activations(build_clip('tiny', tiny_clip_cfg,
                                  pretrained=str(path))) == {QuickGELU}
    with pytest.raises(ValueError, match='quick_gelu'):
        build_clip('tiny', tiny_clip_cfg, quick_gelu=False, pretrained=str(path))


def test_unknown_model_name():
    with pytest.raises(ValueError, match=r"'ViT-B-61'.*list_models\(\)"):
        build_clip('ViT-B-61')


def test_hf_hub_model_name_needs_download():
    with pytest.raises(ValueError, match='download'):
        build_clip('hf-hub:timm/some-model')


@pytest.mark.parametrize('change', ['custom_text', 'hf_text', 'coca', 'timm'])
def test_unsupported_towers(tiny_clip_cfg, change):
    if change == 'custom_text':
        tiny_clip_cfg['custom_text'] = True
    elif change == 'hf_text':
        tiny_clip_cfg['text_cfg']['hf_model_name'] = 'roberta-base'
    elif change == 'coca':
        tiny_clip_cfg['multimodal_cfg'] = dict(width=64)
    else:
        tiny_clip_cfg['vision_cfg']['timm_model_name'] = 'vit_tiny_patch16_224'
    match = 'timm' if change == 'timm' else 'built-in text transformer'
    with pytest.raises(ValueError, match=match):
        build_clip('tiny', model_cfg=tiny_clip_cfg)


def test_invalid_inline_config(tiny_clip_cfg):
    with pytest.raises(ValueError, match="lacks \\['text_cfg'\\]"):
        build_clip('tiny', model_cfg=dict(embed_dim=32,
                                          vision_cfg=tiny_clip_cfg['vision_cfg']))
    tiny_clip_cfg['vision_cfg']['no_such_option'] = 1
    with pytest.raises(ValueError, match='no_such_option'):
        build_clip('tiny', model_cfg=tiny_clip_cfg)


# ------------------------------------------------------ load_clip_state_dict
def test_torchscript_archive_equals_plain_state_dict(tiny_clip_cfg, tmp_path,
                                                     monkeypatch):
    messages = []
    monkeypatch.setattr(clip_checkpoint, 'print_log',
                        lambda msg, **kwargs: messages.append(msg))
    archive, plain = tmp_path / 'ViT-tiny.pt', tmp_path / 'plain.pth'
    expected = save_torchscript_archive(tiny_clip_cfg, archive)
    torch.save(expected, plain)
    assert not is_torchscript_archive(str(plain))

    from_archive = load_clip_state_dict(str(archive), 'tiny')
    for key in ('input_resolution', 'context_length', 'vocab_size'):
        assert key not in from_archive
    assert from_archive.keys() - expected.keys() == {'attn_mask'}
    from_archive.pop('attn_mask')
    assert_state_dicts_equal(from_archive, expected)
    assert_state_dicts_equal(load_clip_state_dict(str(plain), 'tiny'), expected)
    assert len(messages) == 1
    assert 'TorchScript archive' in messages[0] and 'converted' in messages[0]
    assert 'save_clip_weights(' in messages[0] and 'quick_gelu=True' in (
        messages[0])

    # Both load into the towers identically (attn_mask is rebuilt, not loaded).
    towers = []
    for path in (archive, plain):
        clip = build_clip('tiny', tiny_clip_cfg, quick_gelu=True)
        visual = clip.visual
        del clip.visual
        load_clip_weights(visual, str(path), model_name='tiny', tower='visual')
        load_clip_weights(clip, str(path), model_name='tiny', tower='text')
        towers.append((visual.state_dict(), clip.state_dict()))
    for loaded in towers:
        assert_state_dicts_equal(
            loaded[0], {k[7:]: v for k, v in expected.items()
                        if k.startswith('visual.')})
        assert_state_dicts_equal(
            loaded[1], {k: v for k, v in expected.items()
                        if not k.startswith('visual.')})


@pytest.mark.parametrize('wrap', ['state_dict', 'model', 'module', 'none'])
def test_plain_state_dict_wrappings(tiny_clip_cfg, tmp_path, wrap):
    state_dict = tiny_state_dict(tiny_clip_cfg)
    if wrap == 'module':
        saved = {f'module.{k}': v for k, v in state_dict.items()}
    elif wrap == 'none':
        saved = state_dict
    else:
        saved = {wrap: state_dict, 'meta': {'epoch': 3}}
    path = tmp_path / 'clip.bin'
    torch.save(saved, path)
    assert_state_dicts_equal(load_clip_state_dict(str(path), 'tiny'), state_dict)


def test_safetensors_file(tiny_clip_cfg, tmp_path):
    state_dict = tiny_state_dict(tiny_clip_cfg)
    path = tmp_path / 'clip.safetensors'
    save_file({k: v.contiguous() for k, v in state_dict.items()}, str(path))
    assert_state_dicts_equal(load_clip_state_dict(str(path), 'tiny'), state_dict)
    visual = build_clip('tiny', tiny_clip_cfg).visual
    load_clip_weights(visual, str(path), model_name='tiny', tower='visual')
    torch.testing.assert_close(visual.proj, state_dict['visual.proj'],
                               rtol=0, atol=0)


def test_missing_file(tmp_path):
    path = str(tmp_path / 'nowhere.pt')
    with pytest.raises(ValueError, match=r"pretrained='.*nowhere\.pt'.*no such"):
        load_clip_state_dict(path, 'ViT-B-16')


def test_directory_is_not_a_checkpoint(tmp_path):
    with pytest.raises(ValueError, match='is not a file'):
        load_clip_state_dict(str(tmp_path), 'ViT-B-16')


@pytest.mark.parametrize('content,match', [
    ('text', 'could not be read with torch.load'),
    ('unsafe', 'weights_only=False are refused'),
    ('metadata', 'not a state dict'),
    ('safetensors', 'not a readable .safetensors'),
])
def test_files_that_are_not_checkpoints(tmp_path, content, match):
    path = tmp_path / ('x.safetensors' if content == 'safetensors' else 'x.pth')
    if content in ('text', 'safetensors'):
        path.write_text('this is not a checkpoint')
    elif content == 'unsafe':
        torch.save({'weight': NotATensor()}, path)
    else:
        torch.save({'epoch': 3, 'lr': 0.1}, path)
    with pytest.raises(ValueError, match=match) as info:
        load_clip_state_dict(str(path), 'ViT-B-16')
    assert str(path) in str(info.value)


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    """Point the open_clip URL cache and the Hugging Face cache at tmp_path."""
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_CACHE',
                        str(tmp_path / 'hf'))
    return tmp_path


def test_uncached_tag_is_an_error(empty_caches):
    with pytest.raises(ValueError, match=r"pretrained='openai'.*not in the "
                       r'local cache.*ViT-B-16\.pt.*local path'):
        load_clip_state_dict('openai', 'ViT-B-16')


def test_unknown_tag_is_an_error(empty_caches):
    with pytest.raises(ValueError, match=r"no such file.*tags: \['openai'"):
        load_clip_state_dict('opnai', 'ViT-B-16')


def test_tag_resolved_from_url_cache(tiny_clip_cfg, empty_caches):
    cache = empty_caches / 'home' / '.cache' / 'clip'
    cache.mkdir(parents=True)
    expected = save_torchscript_archive(tiny_clip_cfg, cache / 'ViT-B-16.pt')
    loaded = load_clip_state_dict('openai', 'ViT-B-16')
    loaded.pop('attn_mask')
    assert_state_dicts_equal(loaded, expected)


def test_tag_resolved_from_hf_cache(tiny_clip_cfg, empty_caches):
    repo = empty_caches / 'hf' / 'models--laion--CLIP-ViT-B-16-laion2B-s34B-b88K'
    snapshot = repo / 'snapshots' / 'abc123'
    snapshot.mkdir(parents=True)
    (repo / 'refs').mkdir()
    (repo / 'refs' / 'main').write_text('abc123')
    state_dict = tiny_state_dict(tiny_clip_cfg)
    save_file(state_dict, str(snapshot / 'open_clip_model.safetensors'))
    loaded = load_clip_state_dict('laion2b_s34b_b88k', 'ViT-B-16')
    assert_state_dicts_equal(loaded, state_dict)


# --------------------------------------------------------- load_clip_weights
def test_weights_for_another_architecture(tiny_clip_cfg, tmp_path):
    path = tmp_path / 'clip.pth'
    torch.save(tiny_state_dict(tiny_clip_cfg), path)
    tiny_clip_cfg['vision_cfg'].update(width=96, patch_size=16, layers=3)
    other = build_clip('other', model_cfg=tiny_clip_cfg)
    with pytest.raises(ValueError) as info:
        load_clip_weights(other.visual, str(path), model_name='other',
                          tower='visual')
    message = str(info.value)
    assert 'visual.conv1.weight (file (64, 3, 8, 8) vs model (96, 3, 16, 16))' \
        in message
    assert 'missing from the file: visual.transformer.resblocks.2.' in message
    assert str(path) in message and 'another architecture' in message


def test_text_tower_shape_mismatch(tiny_clip_cfg, tmp_path):
    path = tmp_path / 'clip.pth'
    torch.save(tiny_state_dict(tiny_clip_cfg), path)
    tiny_clip_cfg['text_cfg']['width'] = 32
    clip = build_clip('other', model_cfg=tiny_clip_cfg)
    del clip.visual
    with pytest.raises(ValueError, match=r'token_embedding\.weight \(file '
                       r'\(49408, 64\) vs model \(49408, 32\)\)'):
        load_clip_weights(clip, str(path), model_name='other', tower='text')


def test_pretraining_grid_mismatch_hint(tiny_clip_cfg, tmp_path):
    path = tmp_path / 'clip.pth'
    torch.save(tiny_state_dict(tiny_clip_cfg), path)
    tiny_clip_cfg['vision_cfg']['image_size'] = 48
    visual = build_clip('tiny', model_cfg=tiny_clip_cfg).visual
    with pytest.raises(ValueError, match=r'\(17, 64\) vs model \(37, 64\).*'
                       'vision_cfg.image_size'):
        load_clip_weights(visual, str(path), model_name='tiny', tower='visual')


def test_tower_only_file_is_named(tiny_clip_cfg, tmp_path):
    path = tmp_path / 'text_only.pth'
    torch.save({k: v for k, v in tiny_state_dict(tiny_clip_cfg).items()
                if not k.startswith('visual.')}, path)
    visual = build_clip('tiny', model_cfg=tiny_clip_cfg).visual
    with pytest.raises(ValueError, match='no visual-tower keys'):
        load_clip_weights(visual, str(path), model_name='tiny', tower='visual')


def test_load_clip_weights_argument_checks(tiny_clip_cfg, tmp_path):
    path = tmp_path / 'clip.pth'
    torch.save(tiny_state_dict(tiny_clip_cfg), path)
    clip = build_clip('tiny', model_cfg=tiny_clip_cfg)
    with pytest.raises(ValueError, match='`tower` must be one of'):
        load_clip_weights(clip, str(path), model_name='tiny', tower='image')
    with pytest.raises(ValueError, match='visual` was removed'):
        load_clip_weights(clip, str(path), model_name='tiny', tower='text')


def test_logit_scale_shape_fixup(tiny_clip_cfg, tmp_path):
    state_dict = tiny_state_dict(tiny_clip_cfg)
    state_dict['logit_scale'] = torch.tensor([2.5])  # 1-d, model has 0-d
    path = tmp_path / 'clip.pth'
    torch.save(state_dict, path)
    clip = build_clip('tiny', model_cfg=tiny_clip_cfg)
    clip.visual = None
    load_clip_weights(clip, str(path), model_name='tiny', tower='text')
    assert clip.logit_scale.shape == () and clip.logit_scale.item() == 2.5


def test_check_quick_gelu(tiny_clip_cfg):
    check_quick_gelu(build_clip('tiny', tiny_clip_cfg, quick_gelu=True).visual)
    with pytest.raises(ValueError, match=r'QuickGELU.*GELU at .*quick_gelu'):
        check_quick_gelu(build_clip('tiny', tiny_clip_cfg).visual)
    with pytest.raises(ValueError, match='no QuickGELU found'):
        check_quick_gelu(nn.Linear(2, 2))


def test_file_path_with_user_home(tiny_clip_cfg, tmp_path, monkeypatch):
    monkeypatch.setenv('HOME', str(tmp_path))
    state_dict = tiny_state_dict(tiny_clip_cfg)
    torch.save(state_dict, tmp_path / 'clip.pth')
    loaded = load_clip_state_dict(osp.join('~', 'clip.pth'), 'tiny')
    assert_state_dicts_equal(loaded, state_dict)


def test_model_cfg_from_json_file(tiny_clip_cfg, tmp_path):
    import json
    path = tmp_path / 'tiny.json'
    path.write_text(json.dumps(tiny_clip_cfg))
    torch.manual_seed(0)
    from_file = build_clip('tiny', model_cfg=str(path))
    torch.manual_seed(0)
    inline = build_clip('tiny', model_cfg=tiny_clip_cfg)
    for (key, a), (_, b) in zip(from_file.state_dict().items(),
                                inline.state_dict().items()):
        assert torch.equal(a, b), key
    nested = tmp_path / 'nested.json'
    nested.write_text(json.dumps({'model_cfg': tiny_clip_cfg}))
    assert build_clip('tiny', model_cfg=str(nested)).visual.patch_size == (8, 8)
    with pytest.raises(ValueError, match='is not a file'):
        build_clip('tiny', model_cfg=str(tmp_path / 'missing.json'))
    bad = tmp_path / 'bad.json'
    bad.write_text('{nope')
    with pytest.raises(ValueError, match='not valid JSON'):
        build_clip('tiny', model_cfg=str(bad))


# ------------------------------------- the activation a weights file records
def test_plain_state_dict_needs_quick_gelu_set(tiny_clip_cfg, tmp_path):
    """A plain file cannot tell GELU from QuickGELU weights; guessing GELU
    ran OpenAI weights saved by the README's recipe to mIoU 0."""
    path = tmp_path / 'plain.pth'
    torch.save(tiny_state_dict(tiny_clip_cfg), path)
    with pytest.raises(ValueError) as info:
        build_clip('tiny', tiny_clip_cfg, pretrained=str(path))
    assert str(info.value) == (
        f'pretrained={str(path)!r} is a plain state dict that does not '
        'record the activation its CLIP was trained with, and `quick_gelu` '
        'is not set: a wrong guess loads without error and computes wrong '
        'features. Set `quick_gelu=True` for OpenAI weights (and others '
        'trained with QuickGELU), False for GELU ones (e.g. LAION, the toy '
        'CLIP), or save the file with mmseg_zegot.models.utils.'
        'save_clip_weights(..., quick_gelu=...).')
    for quick_gelu, activation in ((True, QuickGELU), (False, nn.GELU)):
        assert activations(build_clip(
            'tiny', tiny_clip_cfg, quick_gelu=quick_gelu,
            pretrained=str(path))) == {activation}


@pytest.mark.parametrize('suffix', ['.pth', '.safetensors'])
@pytest.mark.parametrize('recorded', [True, False])
def test_recorded_activation_is_used_and_enforced(tiny_clip_cfg, tmp_path,
                                                  suffix, recorded):
    """Training with quick_gelu=True on GELU weights (and the reverse) ran
    to mIoU 0 without a warning."""
    path = str(tmp_path / f'clip{suffix}')
    save_clip_weights(tiny_state_dict(tiny_clip_cfg, quick_gelu=recorded),
                      path, quick_gelu=recorded)
    assert recorded_quick_gelu(path) is recorded
    model = build_clip('tiny', tiny_clip_cfg, pretrained=path)
    assert activations(model) == {QuickGELU if recorded else nn.GELU}
    with pytest.raises(ValueError) as info:
        build_clip('tiny', tiny_clip_cfg, quick_gelu=not recorded,
                   pretrained=path)
    assert str(info.value).startswith(
        f'`quick_gelu` is {not recorded}, but pretrained={path!r} '
        "(model_name='tiny') ")
    visual = model.visual
    load_clip_weights(visual, path, model_name='tiny', tower='visual')


def test_toy_clip_records_gelu():
    """The toy CLIP's config (written by
    projects/toy_world/tools/pretrain_clip.py) says GELU; a QuickGELU build
    of it is refused."""
    config = 'projects/toy_world/assets/toy_clip/toy_clip.json'
    weights = 'projects/toy_world/assets/toy_clip/toy_clip.pth'
    assert activations(build_clip('toy-clip', config,
                                  pretrained=weights)) == {nn.GELU}
    with pytest.raises(ValueError) as info:
        build_clip('toy-clip', config, quick_gelu=True, pretrained=weights)
    assert str(info.value).startswith(
        "`quick_gelu` is True, but `model_cfg`'s `quick_gelu` is False")
