# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Tests of the frozen open_clip ViT image encoder with DLFA taps."""
import copy
import warnings

import pytest
import torch
from mmengine.model import BaseModule, initialize
from mmseg.registry import MODELS
from open_clip.model import resize_pos_embed
from open_clip.transformer import QuickGELU
from torch import nn

from mmseg_zegot.models.backbones import ZegOTCLIPVisionTransformer
from mmseg_zegot.models.backbones.clip_vit import interpolate_pos_embed
from mmseg_zegot.models.utils import build_clip, frozen_clip, save_clip_weights


@pytest.fixture
def clip_file(tiny_clip_cfg, tmp_path):
    """A tiny CLIP's state dict on disk and the model it came from."""
    torch.manual_seed(1)
    clip = build_clip('tiny', model_cfg=tiny_clip_cfg).eval()
    path = tmp_path / 'tiny_clip.pth'
    save_clip_weights(clip.state_dict(), str(path), quick_gelu=False)
    return str(path), clip


def make_backbone(cfg, **kwargs):
    kwargs.setdefault('out_indices', (0, 1))
    return ZegOTCLIPVisionTransformer(model_name='tiny', model_cfg=cfg, **kwargs)


def loaded_backbone(cfg, path, **kwargs):
    backbone = make_backbone(cfg, pretrained=path, **kwargs)
    backbone.init_weights()
    return backbone


def visual_weights(clip):
    return {key[len('visual.'):]: value
            for key, value in clip.state_dict().items()
            if key.startswith('visual.')}


def assert_visual_equals(backbone, expected):
    loaded = backbone.visual.state_dict()
    assert loaded.keys() == expected.keys()
    for key, value in expected.items():
        torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)


def test_matches_open_clip_at_pretraining_size(tiny_clip_cfg, clip_file):
    path, clip = clip_file
    backbone = loaded_backbone(tiny_clip_cfg, path, out_indices=(1, 0, -1))
    assert backbone.out_indices == (1, 0, 1)
    x = torch.randn(2, 3, 32, 32)
    taps, global_embed = backbone(x)

    with torch.no_grad():
        reference = clip.forward_intermediates(image=x, image_indices=[0, 1])
        expected_global = clip.encode_image(x, normalize=True)
    torch.testing.assert_close(global_embed, expected_global, rtol=0, atol=1e-5)
    expected_taps = reference['image_intermediates']  # B×D×h×w, blocks 0 and 1
    assert len(taps) == 3
    for tap, block in zip(taps, (1, 0, 1)):
        assert tap.shape == (2, 64, 4, 4)
        torch.testing.assert_close(tap, expected_taps[block], rtol=0, atol=1e-5)
    torch.testing.assert_close(global_embed.norm(dim=-1), torch.ones(2))


def test_non_square_input_matches_open_clip_resized(tiny_clip_cfg, clip_file):
    """A 40×56 input equals open_clip built for 40×56 with resized positions."""
    path, clip = clip_file
    backbone = loaded_backbone(tiny_clip_cfg, path)
    x = torch.randn(2, 3, 40, 56)
    taps, global_embed = backbone(x)
    assert [tap.shape for tap in taps] == [(2, 64, 5, 7)] * 2
    assert global_embed.shape == (2, 32)

    resized_cfg = copy.deepcopy(tiny_clip_cfg)
    resized_cfg['vision_cfg']['image_size'] = (40, 56)
    resized = build_clip('tiny', model_cfg=resized_cfg).eval()
    state_dict = clip.state_dict()
    resize_pos_embed(state_dict, resized)  # open_clip's load-time resize
    resized.load_state_dict(state_dict)
    with torch.no_grad():
        reference = resized.forward_intermediates(image=x, image_indices=[0, 1])
    torch.testing.assert_close(global_embed, reference['image_features'],
                               rtol=0, atol=1e-5)
    for tap, expected in zip(taps, reference['image_intermediates']):
        torch.testing.assert_close(tap, expected, rtol=0, atol=1e-5)


def test_interpolate_pos_embed():
    pos_embed = torch.randn(1 + 4 * 4, 8)
    assert interpolate_pos_embed(pos_embed, (4, 4), (4, 4)) is pos_embed
    resized = interpolate_pos_embed(pos_embed, (4, 4), (5, 7))
    assert resized.shape == (1 + 5 * 7, 8)
    torch.testing.assert_close(resized[0], pos_embed[0], rtol=0, atol=0)
    # A constant field stays constant; the class position is untouched.
    constant = torch.cat([torch.zeros(1, 8), torch.full((16, 8), 3.0)])
    torch.testing.assert_close(
        interpolate_pos_embed(constant, (4, 4), (6, 3))[1:],
        torch.full((18, 8), 3.0))


@pytest.mark.parametrize('size', [(36, 29), (7, 50), (32, 33)])
def test_any_input_size_is_padded_to_whole_patches(tiny_clip_cfg, size):
    """An input whose sides are not multiples of the 8 px patch gives the
    taps and global embedding of the same input zero-padded at the bottom
    and right to the next multiples (as mmseg's ViT pads, 'corner')."""
    backbone = make_backbone(tiny_clip_cfg)
    padded = tuple(-(-side // 8) * 8 for side in size)
    assert backbone.padded_size(size) == padded
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(3))
    taps, global_embed = backbone(x)
    expected_taps, expected_global = backbone(torch.nn.functional.pad(
        x, (0, padded[1] - size[1], 0, padded[0] - size[0])))
    for tap, expected in zip(taps, expected_taps):
        assert tap.shape == (2, 64, padded[0] // 8, padded[1] // 8)
        torch.testing.assert_close(tap, expected, rtol=0, atol=0)
    torch.testing.assert_close(global_embed, expected_global, rtol=0, atol=0)


def test_frozen(tiny_clip_cfg, clip_file):
    path, _ = clip_file
    backbone = loaded_backbone(tiny_clip_cfg, path)
    assert not any(p.requires_grad for p in backbone.parameters())
    before = {k: v.clone() for k, v in backbone.state_dict().items()
              if isinstance(v, torch.Tensor)}
    backbone.train()
    assert backbone.training and not backbone.visual.training
    assert not any(m.training for m in backbone.visual.modules())

    scale = nn.Parameter(torch.ones(()))
    optimizer = torch.optim.SGD([scale, *backbone.parameters()], lr=1.0,
                                momentum=0.9, weight_decay=0.1)
    for _ in range(2):
        # Even a differentiable input builds no graph through the tower.
        x = torch.randn(2, 3, 32, 32, requires_grad=True)
        taps, global_embed = backbone(x)
        assert not global_embed.requires_grad
        assert all(not tap.requires_grad for tap in taps)
        loss = scale * (sum(tap.square().mean() for tap in taps)
                        + global_embed.sum())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert scale.item() != 1.0
    after = backbone.state_dict()
    for key, value in before.items():
        torch.testing.assert_close(after[key], value, rtol=0, atol=0)


@pytest.mark.parametrize('model_name,pretrained,quick', [
    ('ViT-B-16', None, False),
    ('ViT-B-16', 'laion2b_s34b_b88k', False),
    ('ViT-B-16', 'openai', True),
    ('ViT-B-16-quickgelu', '/not/here/weights.pth', True),
])
def test_quick_gelu_follows_the_weights(tiny_clip_cfg, model_name, pretrained,
                                        quick):
    backbone = ZegOTCLIPVisionTransformer(
        model_name=model_name, pretrained=pretrained, model_cfg=tiny_clip_cfg,
        out_indices=(0,))
    activations = {type(m) for m in backbone.visual.modules()
                   if isinstance(m, (nn.GELU, QuickGELU))}
    assert activations == ({QuickGELU} if quick else {nn.GELU})


def test_quick_gelu_false_with_openai_weights(tiny_clip_cfg):
    with pytest.raises(ValueError, match='quick_gelu'):
        ZegOTCLIPVisionTransformer(model_name='ViT-B-16', pretrained='openai',
                                   model_cfg=tiny_clip_cfg, quick_gelu=False,
                                   out_indices=(0,))


def save_torchscript_clip(cfg, path):
    torch.manual_seed(2)
    clip = build_clip('tiny', model_cfg=cfg, quick_gelu=True).eval()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', FutureWarning)
        torch.jit.save(torch.jit.script(clip), str(path))
    return clip


def test_torchscript_archive_loads_with_quick_gelu(tiny_clip_cfg, tmp_path):
    path = str(tmp_path / 'ViT-tiny.pt')
    clip = save_torchscript_clip(tiny_clip_cfg, path)
    backbone = loaded_backbone(tiny_clip_cfg, path)
    assert any(isinstance(m, QuickGELU) for m in backbone.visual.modules())
    assert_visual_equals(backbone, visual_weights(clip))
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        expected = clip.encode_image(x, normalize=True)
    torch.testing.assert_close(backbone(x)[1], expected, rtol=0, atol=1e-5)

    # A GELU build must not accept OpenAI weights set after construction.
    gelu = make_backbone(tiny_clip_cfg)
    gelu.pretrained = path
    with pytest.raises(ValueError, match='QuickGELU'):
        gelu.init_weights()


def test_checkpoint_with_other_activation_is_refused(tiny_clip_cfg):
    quick = make_backbone(tiny_clip_cfg, quick_gelu=True)
    gelu = make_backbone(tiny_clip_cfg)
    make_backbone(tiny_clip_cfg, quick_gelu=True).load_state_dict(
        quick.state_dict())
    with pytest.raises(ValueError, match=r'quick_gelu=True.*'
                       r'model\.image_encoder\.quick_gelu=True'):
        gelu.load_state_dict(quick.state_dict())


def test_init_weights_without_pretrained(tiny_clip_cfg):
    with pytest.raises(ValueError, match=r'model\.image_encoder\.pretrained'):
        make_backbone(tiny_clip_cfg).init_weights()


def test_init_weights_with_another_architecture(tiny_clip_cfg, clip_file):
    path, _ = clip_file
    cfg = copy.deepcopy(tiny_clip_cfg)
    cfg['vision_cfg']['width'] = 96
    backbone = make_backbone(cfg, pretrained=path)
    with pytest.raises(ValueError, match=r'visual\.conv1\.weight \(file '
                       r'\(64, 3, 8, 8\) vs model \(96, 3, 8, 8\)\)'):
        backbone.init_weights()


def test_parent_init_cfg_cannot_reinitialise_clip(tiny_clip_cfg, clip_file):
    """MMEngine's order: a parent applies its init_cfg to its whole tree,
    CLIP included, before it initialises its children, which then load
    CLIP over it."""
    path, clip = clip_file

    class Parent(BaseModule):
        def __init__(self):
            super().__init__(
                init_cfg=dict(type='Normal', layer='Linear', std=10.))
            self.backbone = make_backbone(tiny_clip_cfg, pretrained=path)
            self.head = nn.Linear(64, 64)

    parent = Parent()
    c_fc = parent.backbone.visual.transformer.resblocks[0].mlp.c_fc
    # The threat is real: the parent's init_cfg reaches CLIP's Linear layers.
    initialize(parent, parent.init_cfg)
    assert not torch.equal(c_fc.weight, clip.visual.transformer.resblocks[0]
                           .mlp.c_fc.weight)
    assert not parent.backbone.is_init
    parent.init_weights()
    assert parent.head.weight.std() > 5  # the parent's init_cfg did run
    assert_visual_equals(parent.backbone, visual_weights(clip))
    assert parent.backbone.is_init


def test_clip_is_loaded_once(tiny_clip_cfg, clip_file, monkeypatch):
    """init_weights() marks the encoder initialised (MMEngine's is_init):
    a parent's init_weights does not load it again; a direct call does."""
    path, clip = clip_file
    loads = []
    load = frozen_clip.load_clip_weights
    monkeypatch.setattr(frozen_clip, 'load_clip_weights',
                        lambda *args, **kwargs: loads.append(
                            kwargs['tower']) or load(*args, **kwargs))

    class Parent(BaseModule):
        def __init__(self):
            super().__init__()
            self.backbone = make_backbone(tiny_clip_cfg, pretrained=path)

    parent = Parent()
    parent.backbone.init_weights()
    assert parent.backbone.is_init and loads == ['visual']
    parent.init_weights()
    assert loads == ['visual']
    assert_visual_equals(parent.backbone, visual_weights(clip))
    parent.backbone.init_weights()
    assert loads == ['visual', 'visual']
    parent.backbone.is_init = False  # the setter works as MMEngine's
    assert not parent.backbone.is_init


def test_init_cfg_is_rejected(tiny_clip_cfg):
    with pytest.raises(ValueError, match='init_cfg'):
        make_backbone(tiny_clip_cfg, init_cfg=dict(type='Normal', std=1.))


@pytest.mark.parametrize('out_indices', [(2,), (-3,), (), (0, 1.0), (True,)])
def test_out_indices_validation(tiny_clip_cfg, out_indices):
    with pytest.raises(ValueError, match=r'`out_indices`.*\[0, 2\).*2-layer'):
        make_backbone(tiny_clip_cfg, out_indices=out_indices)


@pytest.mark.parametrize('first_tap, blocks', [(0, (0, 1)), (1, (1, )),
                                               (-1, (1, ))])
def test_first_tap_taps_the_contiguous_last_blocks(tiny_clip_cfg, clip_file,
                                                   first_tap, blocks):
    """The paper's range from layer n to L: the same taps and global
    embedding as listing those blocks in out_indices."""
    path, _ = clip_file
    ranged = loaded_backbone(tiny_clip_cfg, path, out_indices=None,
                             first_tap=first_tap)
    listed = loaded_backbone(tiny_clip_cfg, path, out_indices=blocks)
    assert ranged.out_indices == blocks
    x = torch.randn(2, 3, 32, 32)
    (taps, global_embed), (expected, expected_global) = ranged(x), listed(x)
    assert torch.equal(global_embed, expected_global)
    assert len(taps) == len(blocks)
    for tap, want in zip(taps, expected):
        assert torch.equal(tap, want)


def test_first_tap_validation(tiny_clip_cfg):
    with pytest.raises(ValueError, match='either `out_indices`.*first_tap.*'
                       r'out_indices=None'):
        make_backbone(tiny_clip_cfg, first_tap=0)  # out_indices (0, 1) set
    for bad in (2, -3, 1.0, True):
        with pytest.raises(ValueError, match=r'`first_tap`.*\[0, 2\)'):
            make_backbone(tiny_clip_cfg, out_indices=None, first_tap=bad)


@pytest.mark.parametrize('change', [dict(pool_type='avg'),
                                    dict(attentional_pool=True)])
def test_unsupported_pooling(tiny_clip_cfg, change):
    tiny_clip_cfg['vision_cfg'].update(change)
    with pytest.raises(ValueError, match="pool_type 'tok'"):
        make_backbone(tiny_clip_cfg)


def test_unsupported_image_tower(tiny_clip_cfg):
    tiny_clip_cfg['vision_cfg'].update(layers=(1, 1, 1, 1), width=8)
    with pytest.raises(ValueError, match='ModifiedResNet'):
        make_backbone(tiny_clip_cfg)


def test_dimensions_and_output_projection(tiny_clip_cfg, clip_file):
    path, clip = clip_file
    backbone = MODELS.build(dict(type='ZegOTCLIPVisionTransformer',
                                 model_name='tiny', model_cfg=tiny_clip_cfg,
                                 pretrained=path, out_indices=(1,)))
    backbone.init_weights()
    assert backbone.embed_dims == 64
    assert backbone.output_dims == 32
    assert backbone.patch_size == (8, 8)
    assert backbone.num_layers == 2
    weight, bias, proj = backbone.output_projection()
    torch.testing.assert_close(weight, clip.visual.ln_post.weight, rtol=0, atol=0)
    torch.testing.assert_close(bias, clip.visual.ln_post.bias, rtol=0, atol=0)
    torch.testing.assert_close(proj, clip.visual.proj, rtol=0, atol=0)
    weight.add_(1.0)
    proj.add_(1.0)
    torch.testing.assert_close(backbone.visual.ln_post.weight,
                               clip.visual.ln_post.weight, rtol=0, atol=0)
    assert not proj.requires_grad


def test_taps_only_for_stock_mmseg_heads(tiny_clip_cfg):
    """output_global=False gives the tuple of feature maps a stock mmseg
    head takes, equal to the taps of the ZegOT output."""
    from mmseg.models.decode_heads import FCNHead
    torch.manual_seed(0)
    both = make_backbone(tiny_clip_cfg)
    only = make_backbone(tiny_clip_cfg, output_global=False)
    only.load_state_dict(both.state_dict())
    x = torch.randn(2, 3, 32, 40)
    taps, _ = both(x)
    features = only(x)
    assert isinstance(features, tuple) and len(features) == 2
    for a, b in zip(taps, features):
        torch.testing.assert_close(a, b)
    head = FCNHead(in_channels=64, channels=16, num_convs=1, num_classes=5,
                   in_index=-1)
    assert head(features).shape == (2, 5, 4, 5)
