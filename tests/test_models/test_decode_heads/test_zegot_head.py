# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""ZegOTHead on synthetic taps / embeddings (and one tiny real CLIP ViT)."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from mmseg_zegot.models.backbones import ZegOTCLIPVisionTransformer
from mmseg_zegot.models.decode_heads.zegot_head import ZegOTHead
from mmseg_zegot.models.losses import dice_loss, sigmoid_focal_loss
from mmseg_zegot.models.utils.sinkhorn import sinkhorn
from mmseg_zegot.models.utils.text_alignment import align_text
from mmseg_zegot.models.utils.zero_shot_targets import (
    PSEUDO_LABEL,
    assign_pseudo_labels,
    map_labels,
)

B, D, C, K, N, GRID, SIZE = 2, 64, 32, 5, 4, 4, 32


def make_head(**kwargs) -> ZegOTHead:
    cfg = dict(type='ZegOTHead', in_channels=D, channels=C, num_classes=K)
    cfg.update(kwargs)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def loss_cfgs(ignored_as_negative):
    """``loss_decode`` / ``loss_ot`` of the head's defaults with
    ``ignored_as_negative`` set."""
    losses = [
        dict(type=kind, loss_name=f'loss_{name}',
             ignored_as_negative=ignored_as_negative)
        for kind, name in (('ZegOTFocalLoss', 'focal'),
                           ('ZegOTDiceLoss', 'dice'))
    ]
    return dict(loss_decode=losses, loss_ot=[
        dict(cfg, loss_name=cfg['loss_name'] + '_ot') for cfg in losses])


def make_inputs(k=K, seed=0, num_taps=4):
    gen = torch.Generator().manual_seed(seed)
    taps = [torch.randn(B, D, GRID, GRID, generator=gen)
            for _ in range(num_taps)]
    glob = F.normalize(torch.randn(B, C, generator=gen), dim=-1)
    text = F.normalize(torch.randn(k, N, C, generator=gen), dim=-1)
    return [torch.zeros(B, 3, SIZE, SIZE), (taps, glob), text]


def make_samples(labels):
    samples = []
    for label in labels:
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=label[None].long())
        sample.set_metainfo(dict(img_shape=tuple(label.shape),
                                 pad_shape=tuple(label.shape)))
        samples.append(sample)
    return samples


def random_labels(k=K, seed=1):
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, k, (B, SIZE, SIZE), generator=gen)
    labels[:, :4] = 255
    return labels


def metas(size=SIZE):
    return [dict(img_shape=(size, size), pad_shape=(size, size))] * B


def test_loss_keys_and_values():
    head = make_head()
    losses = head.loss(make_inputs(), make_samples(random_labels()), None)
    assert set(losses) == {'loss_focal', 'loss_dice', 'loss_focal_ot',
                           'loss_dice_ot', 'acc_seg'}
    for key, value in losses.items():
        assert value.dim() == 0 and torch.isfinite(value), key
        if key.startswith('loss_'):
            assert value.item() > 0 and value.requires_grad
    assert 0 <= losses['acc_seg'].item() <= 100


@pytest.mark.parametrize('decoder', [dict(num_layers=3, num_heads=8,
                                          ffn_ratio=4, dropout=0.1), None])
def test_every_trainable_parameter_gets_a_gradient(decoder):
    """No unused parameters: DDP with find_unused_parameters=False works."""
    head = make_head(decoder=decoder)
    head.train()
    losses = head.loss(make_inputs(), make_samples(random_labels()), None)
    sum(v for k, v in losses.items() if k.startswith('loss_')).backward()
    for name, param in head.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_forward_returns_dict_of_logits():
    head = make_head()
    out = head.forward(make_inputs())
    assert set(out) == {'score_logits', 'decoder_logits'}
    for value in out.values():
        assert value.shape == (B, K, GRID, GRID)
        assert value.dtype == torch.float32


def test_predict_shape_and_probabilities():
    head = make_head()
    head.eval()
    inputs = make_inputs()
    pred = head.predict(inputs, metas(), None)
    assert pred.shape == (B, K, SIZE, SIZE)
    # OTSeg: p = σ(0.5 decoder + 0.5 logit(P)), both upsampled logits
    out = head.forward(inputs)
    up = {k: F.interpolate(v, size=(SIZE, SIZE), mode='bilinear',
                           align_corners=False) for k, v in out.items()}
    expected = (0.5 * up['decoder_logits'] + 0.5 * up['score_logits'])
    torch.testing.assert_close(pred, expected.sigmoid())
    # the ablation averages the probabilities
    head.ensemble = 'probabilities'
    expected = (0.5 * up['decoder_logits'].sigmoid()
                + 0.5 * up['score_logits'].sigmoid())
    mixed = head.predict(inputs, metas(), None)
    torch.testing.assert_close(mixed, expected)
    assert (mixed - pred).abs().max() > 1e-3
    # slide inference passes img_shape as a torch.Size
    slide = [dict(img_shape=torch.Size((24, 16)), pad_shape=(SIZE, SIZE))]
    assert head.predict(inputs, slide * B, None).shape == (B, K, 24, 16)


def test_seen_bias_changes_only_seen_columns():
    head = make_head(seen_bias=0.1)
    head.eval()
    inputs = make_inputs()
    plain = head.predict(inputs, metas(), None)
    seen = torch.tensor([True, False, True, False, False])
    head.set_seen_mask(seen)
    biased = head.predict(inputs, metas(), None)
    diff = biased - plain
    torch.testing.assert_close(diff[:, seen], torch.full_like(
        diff[:, seen], -0.1), rtol=0, atol=1e-6)
    assert torch.equal(diff[:, ~seen], torch.zeros_like(diff[:, ~seen]))
    # a mask for another vocabulary size is refused
    head.set_seen_mask(torch.tensor([True, False]))
    with pytest.raises(ValueError, match='test vocabulary'):
        head.predict(inputs, metas(), None)


def test_decoder_free_head():
    head = make_head(decoder=None, ensemble_weight=0.5)
    assert head.decoder is None and head.ensemble_weight == 0.0
    inputs = make_inputs()
    out = head.forward(inputs)
    assert set(out) == {'score_logits'}
    losses = head.loss(inputs, make_samples(random_labels()), None)
    assert set(losses) == {'loss_focal_ot', 'loss_dice_ot', 'acc_seg'}
    head.eval()
    pred = head.predict(inputs, metas(), None)
    expected = F.interpolate(out['score_logits'], size=(SIZE, SIZE),
                             mode='bilinear', align_corners=False).sigmoid()
    torch.testing.assert_close(pred, expected)


def test_single_tap_uses_only_that_tap():
    head = make_head(in_index=(3, ))
    assert len(head.dlfa) == 1
    head.eval()
    inputs = make_inputs()
    out = head.forward(inputs)
    other = make_inputs(seed=5)
    other[1] = ([other[1][0][0], other[1][0][1], other[1][0][2],
                 inputs[1][0][3]], inputs[1][1])
    other[2] = inputs[2]
    for key, value in head.forward(other).items():
        torch.testing.assert_close(value, out[key])
    losses = head.loss(inputs, make_samples(random_labels()), None)
    assert all(torch.isfinite(v) for v in losses.values())


def test_deep_aggregation_is_geometric_mean_of_sigmoids():
    head = make_head()
    inputs = make_inputs()
    _, (taps, glob), text = inputs
    feats = head.dlfa(taps)
    queries = align_text(glob, text, head.text_align)
    per_tap = [head.refined_score(f, queries) for f in feats]
    prob = torch.stack([s.sigmoid() for s in per_tap]).prod(0)**(1 / 4)
    out = head.forward(inputs)['score_logits']
    torch.testing.assert_close(out.sigmoid().flatten(2), prob,
                               rtol=1e-5, atol=1e-6)


def test_refined_score_with_and_without_ot():
    head = make_head(use_ot=False)
    gen = torch.Generator().manual_seed(0)
    feats = F.normalize(torch.randn(B, GRID * GRID, C, generator=gen), dim=-1)
    queries = F.normalize(torch.randn(B, K, N, C, generator=gen), dim=-1)
    scores = torch.einsum('bmc,bknc->bkmn', feats, queries)
    # uniform plan: S* = sum_n S
    torch.testing.assert_close(head.refined_score(feats, queries),
                               scores.sum(-1))
    head.use_ot = True
    plan = sinkhorn(1 - scores, epsilon=0.05, num_iters=50)
    m = GRID * GRID
    expected = (m * N * plan * scores).sum(-1)
    got = head.refined_score(feats, queries)
    torch.testing.assert_close(got, expected)
    assert not torch.allclose(got, scores.sum(-1), atol=1e-3)


def test_dlfa_init_equals_frozen_maskclip_projection(tiny_clip_cfg):
    encoder = ZegOTCLIPVisionTransformer(
        model_name='tiny', model_cfg=tiny_clip_cfg, quick_gelu=False,
        out_indices=(0, 1))
    head = make_head(in_channels=encoder.embed_dims,
                     channels=encoder.output_dims, in_index=(0, 1),
                     decoder=dict(num_layers=1, num_heads=8, ffn_ratio=4,
                                  dropout=0.1))
    head.dlfa.init_from_clip(*encoder.output_projection())
    taps, _ = encoder(torch.randn(2, 3, 32, 32))
    visual = encoder.visual
    for proj, tap in zip(head.dlfa, taps):
        tokens = tap.flatten(2).transpose(1, 2)
        torch.testing.assert_close(proj(tokens),
                                   visual.ln_post(tokens) @ visual.proj)
    with pytest.raises(ValueError, match='do not match'):
        head.dlfa.init_from_clip(torch.ones(3), torch.ones(3),
                                 torch.ones(3, 2))


def test_frozen_dlfa_has_no_trainable_parameters():
    head = make_head(dlfa_projection='frozen')
    assert not any(p.requires_grad for p in head.dlfa.parameters())
    assert all(p.requires_grad for p in head.text_align.parameters())


@pytest.mark.parametrize('negative', [True, False])
def test_loss_finite_with_all_ignored_labels(negative):
    head = make_head(**loss_cfgs(negative))
    inputs = make_inputs()
    labels = torch.full((B, SIZE, SIZE), 255)
    losses = head.loss(inputs, make_samples(labels), None)
    total = sum(v for k, v in losses.items() if k.startswith('loss_'))
    # the reference: every pixel a negative (focal only: no class present)
    assert (total.item() > 0) == negative and total.requires_grad
    assert losses['loss_dice'].item() == 0.0
    assert losses['acc_seg'].item() == 0.0
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in head.parameters())


@pytest.mark.parametrize('negative', [True, False])
def test_inductive_unseen_pixel_pushes_every_seen_column_down(negative):
    """Inductive training: an unseen-class pixel is mapped to 255, and the
    reference losses push every seen column down there, on both paths (the
    ablation leaves it out)."""
    head = make_head(**loss_cfgs(negative))
    # dataset classes 0..4; 1 and 3 unseen; seen columns 0, 1, 2
    label_map = torch.tensor([0, 255, 1, 255, 2])
    labels = random_labels(k=5, seed=3)
    labels[:, 10:14, 10:14] = 3  # unseen pixels
    targets = map_labels(labels, label_map, ignore_index=255,
                         unlabeled_index=254)
    gen = torch.Generator().manual_seed(5)
    logits = {key: torch.randn(B, 3, SIZE, SIZE, generator=gen,
                               requires_grad=True)
              for key in ('score_logits', 'decoder_logits')}
    out = head.loss_by_feat(logits, make_samples(targets))
    sum(v for k, v in out.items() if k.startswith('loss_')).backward()
    unseen = (labels == 3).unsqueeze(1).expand(-1, 3, -1, -1)
    for key, value in logits.items():
        grad = value.grad[unseen]
        if negative:
            assert (grad > 0).all(), key  # gradient descent lowers them
        else:
            assert torch.equal(grad, torch.zeros_like(grad)), key


def test_losses_are_those_of_the_final_targets():
    """The head takes final targets: dataset classes 0..4 with 1 and 3
    unseen, mapped to the 3 training columns before the head."""
    head = make_head()
    label_map = torch.tensor([0, 255, 1, 255, 2])
    inputs = make_inputs(k=3)
    labels = random_labels(k=5)
    targets = map_labels(labels, label_map, ignore_index=255,
                         unlabeled_index=254)
    losses = head.loss(inputs, make_samples(targets), None)
    logits = {k: F.interpolate(v, size=(SIZE, SIZE), mode='bilinear',
                               align_corners=False)
              for k, v in head.forward(inputs).items()}
    target = label_map[labels.clamp(max=4)].masked_fill(labels == 255, 255)
    assert (target == 255).sum() > (labels == 255).sum()
    expected = 100 * sigmoid_focal_loss(logits['score_logits'], target)
    torch.testing.assert_close(losses['loss_focal_ot'], expected)
    expected = dice_loss(logits['decoder_logits'], target)
    torch.testing.assert_close(losses['loss_dice'], expected)


@pytest.mark.parametrize('ensemble, winner', [('logits', 1),
                                              ('probabilities', 3)])
def test_pseudo_labels_come_from_the_inference_ensemble(ensemble, winner):
    """OTSeg's pseudo-labels: argmax over unseen columns of
    σ(0.5 score + 0.5 decoder); averaging the sigmoids can pick another."""
    head = make_head(ensemble=ensemble)
    labels = torch.tensor([[[PSEUDO_LABEL]]])
    score = torch.full((1, 4, 1, 1), -5.0)
    decoder = score.clone()
    score[0, 1], decoder[0, 1] = 6.0, -3.0  # σ(1.5) = 0.82; mean σ 0.52
    score[0, 3], decoder[0, 3] = 0.6, 0.6  # σ(0.6) = 0.65 either way
    prob = head.probabilities({'score_logits': score,
                               'decoder_logits': decoder})
    out = assign_pseudo_labels(labels, prob,
                               torch.tensor([False, True, False, True]), 255)
    assert out.tolist() == [[[winner]]]


@pytest.mark.parametrize('kwargs, key', [
    (dict(ot_grad='implicit'), 'ot_grad'),
    (dict(ot_epsilon=0.0), 'ot_epsilon'),
    (dict(ot_epsilon=float('nan')), 'ot_epsilon'),
    (dict(ot_iters=0), 'ot_iters'),
    (dict(ot_iters=2.5), 'ot_iters'),
    (dict(ensemble_weight=1.5), 'ensemble_weight'),
    (dict(ensemble='mean'), 'ensemble'),
    (dict(score_to_decoder=1), 'score_to_decoder'),
    (dict(seen_bias=-0.1), 'seen_bias'),
    (dict(dlfa_projection='fixed'), 'dlfa_projection'),
    (dict(text_alignment_init='zeros'), 'text_alignment_init'),
    (dict(use_ot=1), 'use_ot'),
    (dict(decoder=dict(num_heads=5)), 'decoder.num_heads'),
    (dict(decoder=dict(num_layers=0)), 'decoder.num_layers'),
    (dict(decoder=dict(depth=2)), 'decoder'),
    (dict(in_channels=None), 'in_channels'),
    (dict(num_classes=None), 'num_classes'),
    (dict(init_cfg=dict(type='Normal', std=0.01)), 'init_cfg'),
    (dict(loss_ot=dict(type='ZegOTDiceLoss', loss_name='loss_dice')),
     'loss_name'),
    (dict(loss_ot=dict(type='ZegOTDiceLoss', loss_name='dice_ot')),
     'loss_name'),
])
def test_invalid_config_raises_naming_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        make_head(**kwargs)


def test_tiny_width_with_eight_heads():
    head = make_head(channels=32)
    assert head.decoder.scores.num_heads == 8


def test_without_text_alignment_queries_are_the_prompts():
    head = make_head(text_alignment=False)
    assert head.text_align is None
    g = F.normalize(torch.randn(2, 32), dim=-1)
    t = F.normalize(torch.randn(3, 4, 32), dim=-1)
    torch.testing.assert_close(align_text(g, t, head.text_align),
                               t.unsqueeze(0).expand(2, -1, -1, -1))


def test_identity_text_alignment_init_starts_at_the_prompts():
    """q = t at step 0, for any global embedding; gradients still reach the
    whole alignment layer (both halves)."""
    head = make_head(text_alignment_init='identity')
    g = F.normalize(torch.randn(2, C), dim=-1)
    t = F.normalize(torch.randn(3, N, C), dim=-1)
    q = align_text(g, t, head.text_align)
    torch.testing.assert_close(q, t.unsqueeze(0).expand(2, -1, -1, -1))
    q.pow(3).sum().backward()
    weight_grad = head.text_align.weight.grad
    assert weight_grad[:, :C].abs().sum() > 0
    assert weight_grad[:, C:].abs().sum() > 0


def test_default_text_alignment_init_is_zegclip_trunc_normal():
    head = make_head()
    weight = head.text_align.weight
    assert 0.017 < weight.std() < 0.023  # std 0.02 (2C x C = 2048 samples)
    assert torch.count_nonzero(head.text_align.bias) == 0


def test_score_to_decoder_changes_only_the_decoder():
    """S* into the decoder: the score path is unchanged, the decoder logits
    change, the only new parameters are the per-layer gains (which get a
    gradient), and with zero gains the decoder is the plain one."""
    torch.manual_seed(0)
    plain = make_head()
    torch.manual_seed(0)
    fed = make_head(score_to_decoder=True)
    extra = set(dict(fed.named_parameters())) - set(
        dict(plain.named_parameters()))
    assert extra == {'decoder.score_gains'}
    assert torch.equal(fed.decoder.score_gains, torch.ones(2))
    fed.load_state_dict(plain.state_dict(), strict=False)
    plain.eval()
    fed.eval()
    inputs = make_inputs()
    a, b = plain.forward(inputs), fed.forward(inputs)
    assert torch.equal(a['score_logits'], b['score_logits'])
    change = (a['decoder_logits'] - b['decoder_logits']).abs().max()
    assert change > 1e-3 * a['decoder_logits'].abs().max()
    with torch.no_grad():
        fed.decoder.score_gains.zero_()
    torch.testing.assert_close(fed.forward(inputs)['decoder_logits'],
                               a['decoder_logits'])
    fed.train()
    losses = fed.loss(inputs, make_samples(random_labels()), None)
    losses['loss_focal'].backward()
    assert fed.decoder.score_gains.grad.abs().min() > 0


@pytest.mark.parametrize('decoder', [None, dict(num_layers=1)])
def test_score_to_decoder_needs_decoder_layers(decoder):
    with pytest.raises(ValueError, match='score_to_decoder.*num_layers >= 2'):
        make_head(score_to_decoder=True, decoder=decoder)
