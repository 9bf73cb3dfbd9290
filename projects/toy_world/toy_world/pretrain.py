# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Pretrain the toy CLIP on the toy world's image-caption pairs.

The "web data": images of the toy world's generator family, drawn on the fly
from a seed stream of their own (never the segmentation images), whose
captions name every visible object, for every category, so the unseen
classes of any later zero-shot split are known to this CLIP as every concept
is known to the real one. Nothing else is supervised: no masks, no boxes.

Training is contrastive (InfoNCE in both directions, as CLIP), with every
caption in the batch that is true of an image counted as its positive (small
vocabulary, many exact duplicates per batch). ``--captions described``
(the default, which with the default 4000 steps made the committed
weights) gives each name words for its object's size, colours and texture,
a larger vocabulary of which the class names are a part; ``--captions
names`` names the classes only, the recipe of the earlier toy CLIPs (both
compared in ``docs/toy_benchmark.md``). The global embedding is the
class token (``pool_type='tok'``, as the real CLIP ViTs and what the ZegOT
image encoder reads). The mean of the projected patch tokens is contrasted
with the same captions too (``--avg-pool-weight``, as CLIPs trained with
global average pooling): still only image-level supervision, it puts the
patch tokens of the last layers into the joint space, which the real CLIP's
scale of data does and a few minutes of toy pretraining otherwise do not
(400-step comparison: 16% vs 37% training-free dense pixel accuracy).

Deterministic: the same seed, options and thread count on the same machine
give the same bytes of the weights file (``torch.use_deterministic_algorithms``,
fixed threads, data drawn from ``numpy`` generators seeded per step).

Writes to ``--out-dir``:
    toy_clip.pth          plain state dict (tensors only; open_clip ``CLIP``
                          keys; fp16 by default: loading casts to the model's
                          dtype), ``torch.load(..., weights_only=True)``
    toy_clip.json         the open_clip config dict (``open_clip.CLIP(**cfg)``)
    toy_clip_report.json  options, timings, sha256 and the zero-shot results

and reports zero-shot classification accuracy on held-out single-object
images and the training-free dense baseline (patch tokens through ``ln_post``
and ``proj`` classified by the class text embeddings) on the world's val
images (``--world-seed``, same generator as :func:`.world.generate_world`).

Example (:func:`main` is the command line of
``projects/toy_world/tools/pretrain_clip.py``)::

    python projects/toy_world/tools/pretrain_clip.py --out-dir work_dirs/toy_clip
    python projects/toy_world/tools/pretrain_clip.py --quick --out-dir /tmp/toy_clip
"""
import argparse
import datetime
import hashlib
import json
import math
import os
import os.path as osp
import time

import numpy as np
import torch
import torch.nn.functional as F

from . import captions as captions_lib
from . import toy_clip as tc
from . import world as tw

WEIGHTS = 'toy_clip.pth'
CONFIG = 'toy_clip.json'
REPORT = 'toy_clip_report.json'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Pretrain the toy CLIP (deterministic, CPU).')
    parser.add_argument('--out-dir', default='work_dirs/toy_clip')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--steps', type=int, default=4000)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--lr', type=float, default=1e-3)
    parser.add_argument('--weight-decay', type=float, default=0.1)
    parser.add_argument('--warmup', type=int, default=100)
    parser.add_argument('--avg-pool-weight', type=float, default=1.0,
                        help='weight of a second contrastive loss on the '
                        'mean of the projected patch tokens (0: off)')
    parser.add_argument('--threads', type=int, default=2,
                        help='torch CPU threads (results depend on it)')
    parser.add_argument('--dtype', choices=['fp16', 'fp32'], default='fp16',
                        help='storage dtype of the weights file')
    parser.add_argument(
        '--captions', choices=captions_lib.CAPTION_STYLES, default='described',
        help="caption style: class names only, or names with words for "
        "each object's size, colours and texture")
    parser.add_argument('--categories', nargs='+', default=None,
                        help='category subset (default: all)')
    parser.add_argument('--eval-per-class', type=int, default=50,
                        help='held-out single-object images per class')
    parser.add_argument('--eval-scenes', type=int, default=500,
                        help='world val images for the dense check')
    parser.add_argument('--world-seed', type=int, default=0,
                        help='seed of the world whose val images are used')
    parser.add_argument('--unseen', nargs='*', default=None,
                        help='unseen class names, to aggregate the dense '
                        'check as seen/unseen (default: no split)')
    parser.add_argument('--log-interval', type=int, default=100)
    parser.add_argument('--eval-only', action='store_true',
                        help='evaluate the weights already in --out-dir')
    parser.add_argument('--quick', action='store_true',
                        help='a few seconds: 3 steps of 16, tiny eval')
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.batch_size, args.warmup = 3, 16, 1
        args.eval_per_class, args.eval_scenes = 2, 8
        args.log_interval = 1
    return args


def set_determinism(seed: int, threads: int) -> None:
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)


def make_batch(seed: int, step: int, batch_size: int, size, names, style):
    """Images (B×H×W×3 uint8), captions and the B×B positives of one step
    (``[i, j]``: caption ``j`` is true of image ``i``)."""
    rng = tw.image_rng(seed, 'clip', step)
    pairs = [
        captions_lib.sample_caption_pair(rng, size, names, style)
        for _ in range(batch_size)
    ]
    positive = torch.tensor([[b.describes(a) for b in pairs] for a in pairs])
    return (np.stack([p.image for p in pairs]), [p.caption for p in pairs],
            positive)


def contrastive_loss(image_emb, text_emb, logit_scale, positive):
    """Symmetric InfoNCE; every caption true of an image is a positive of
    it (``positive``: B×B bool, image × caption)."""
    logits = logit_scale * image_emb @ text_emb.t()
    positive = positive.float()
    target_i = positive / positive.sum(1, keepdim=True)
    target_t = positive.t() / positive.t().sum(1, keepdim=True)
    loss_i = -(target_i * F.log_softmax(logits, 1)).sum(1).mean()
    loss_t = -(target_t * F.log_softmax(logits.t(), 1)).sum(1).mean()
    return (loss_i + loss_t) / 2


def encode_image_both(model, images):
    """The class-token embedding and the mean projected patch token."""
    visual = model.visual
    x = visual.transformer(visual._embeds(images))
    x = visual.ln_post(x)
    cls = F.normalize(x[:, 0] @ visual.proj, dim=-1)
    avg = F.normalize(x[:, 1:].mean(1) @ visual.proj, dim=-1)
    return cls, avg


def param_groups(model, weight_decay):
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if (param.ndim < 2 or 'ln' in name or 'bias' in name
                or 'logit_scale' in name):
            no_decay.append(param)
        else:
            decay.append(param)
    return [dict(params=no_decay, weight_decay=0.0),
            dict(params=decay, weight_decay=weight_decay)]


def eta(elapsed: float, done: int, total: int) -> str:
    """The time left (``h:mm:ss``) if the remaining steps take as long as
    the ``done`` ones did on average."""
    return str(datetime.timedelta(seconds=round(elapsed / done *
                                                (total - done))))


def train(args, cfg, names):
    size = tuple(cfg['vision_cfg']['image_size'] for _ in range(2))
    context = cfg['text_cfg']['context_length']
    model = tc.build_toy_clip(cfg)
    model.train()
    optimizer = torch.optim.AdamW(param_groups(model, args.weight_decay),
                                  lr=args.lr, betas=(0.9, 0.98), eps=1e-6)

    def lr_at(step):
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        progress = (step - args.warmup) / max(1, args.steps - args.warmup)
        return args.lr * 0.5 * (1 + math.cos(math.pi * progress))

    history = []
    used_tokens = torch.zeros(cfg['text_cfg']['vocab_size'],
                              dtype=torch.bool)
    start = time.perf_counter()
    data_time = 0.0
    for step in range(args.steps):
        tic = time.perf_counter()
        images, captions, positive = make_batch(args.seed, step,
                                                args.batch_size, size, names,
                                                args.captions)
        images = tc.normalize_images(images)
        tokens = tc.tokenize(captions, context)
        used_tokens[tokens.flatten()] = True
        data_time += time.perf_counter() - tic
        for group in optimizer.param_groups:
            group['lr'] = lr_at(step)
        cls_emb, avg_emb = encode_image_both(model, images)
        text_emb = F.normalize(model.encode_text(tokens), dim=-1)
        scale = model.logit_scale.exp()
        loss = contrastive_loss(cls_emb, text_emb, scale, positive)
        if args.avg_pool_weight:
            loss = loss + args.avg_pool_weight * contrastive_loss(
                avg_emb, text_emb, scale, positive)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if (step + 1) % args.log_interval == 0 or step + 1 == args.steps:
            elapsed = time.perf_counter() - start
            history.append(dict(step=step + 1, loss=round(loss.item(), 4)))
            print(f'step {step + 1}/{args.steps}  loss {loss.item():.4f}  '
                  f'logit_scale {scale.item():.1f}  lr {lr_at(step):.2e}  '
                  f'{elapsed:.0f}s (data {data_time:.0f}s)  eta '
                  f'{eta(elapsed, step + 1, args.steps)}', flush=True)
    train_time = time.perf_counter() - start
    with torch.no_grad():
        # Rows of tokens that no caption used carry nothing learnt (only
        # their random init and weight decay): zero them, so the weights
        # file compresses (git stores it compressed) and says so.
        model.token_embedding.weight[~used_tokens] = 0
    return model, dict(train_time_s=round(train_time, 1),
                       data_time_s=round(data_time, 1),
                       used_tokens=int(used_tokens.sum()), history=history)


def save(model, cfg, args, out_dir):
    dtype = torch.float16 if args.dtype == 'fp16' else torch.float32
    state = {
        key: value.detach().to(dtype).clone().contiguous()
        if value.is_floating_point() else value.detach().clone()
        for key, value in model.state_dict().items()
    }
    path = osp.join(out_dir, WEIGHTS)
    torch.save(state, path)
    with open(osp.join(out_dir, CONFIG), 'w') as file:
        json.dump(cfg, file, indent=2, sort_keys=True)
        file.write('\n')
    with open(path, 'rb') as file:
        digest = hashlib.sha256(file.read()).hexdigest()
    return path, digest


def load(out_dir):
    """The saved model, rebuilt from the saved config (strict load)."""
    with open(osp.join(out_dir, CONFIG)) as file:
        cfg = json.load(file)
    model = tc.build_toy_clip(cfg)
    state = torch.load(osp.join(out_dir, WEIGHTS), weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval(), cfg


@torch.no_grad()
def evaluate_classification(model, names, args, size):
    """Zero-shot top-1 accuracy on held-out single-object images."""
    text = tc.encode_class_names(model, names)
    correct = np.zeros(len(names), np.int64)
    total = np.zeros(len(names), np.int64)
    confusion = np.zeros((len(names), len(names)), np.int64)
    count = args.eval_per_class * len(names)
    for begin in range(0, count, 256):
        images, targets = [], []
        for index in range(begin, min(count, begin + 256)):
            rng = tw.image_rng(args.seed, 'clip_eval', index)
            cls = index % len(names)
            image, _, _ = tw.sample_single(rng, cls, size, names)
            images.append(image)
            targets.append(cls)
        emb = F.normalize(model.encode_image(tc.normalize_images(
            np.stack(images))), dim=-1)
        pred = (emb @ text.t()).argmax(1).numpy()
        for t, p in zip(targets, pred):
            confusion[t, p] += 1
            total[t] += 1
            correct[t] += int(t == p)
    per_class = {n: round(float(correct[k] / total[k]), 4)
                 for k, n in enumerate(names)}
    return dict(top1=round(float(correct.sum() / total.sum()), 4),
                per_class=per_class, confusion=confusion.tolist())


@torch.no_grad()
def evaluate_dense(model, names, args, size, unseen):
    """Training-free patch classification on the world's val images.

    Returns per feature (``layer{i}``, ``maskclip``) pixel accuracy and IoU
    per class over object pixels (background and outlines ignored, as with
    ``reduce_zero_label``), their means and seen/unseen aggregates.
    """
    text = tc.encode_class_names(model, names)
    depth = len(model.visual.transformer.resblocks)
    num = len(names)
    confusions = {}
    for begin in range(0, args.eval_scenes, 128):
        images, labels = [], []
        for index in range(begin, min(args.eval_scenes, begin + 128)):
            rng = tw.image_rng(args.world_seed, 'val', index)
            image, label, _ = tw.sample_scene(rng, size, names)
            images.append(image)
            labels.append(label)
        labels = torch.from_numpy(np.stack(labels)).long()
        feats = tc.patch_embeddings(model.visual,
                                    tc.normalize_images(np.stack(images)),
                                    layers=range(depth), maskclip=True)
        valid = (labels > 0) & (labels <= num)
        gt = labels[valid] - 1
        for key, feat in feats.items():
            logits = torch.einsum('bchw,kc->bkhw', feat, text)
            logits = F.interpolate(logits, size=labels.shape[1:],
                                   mode='bilinear', align_corners=False)
            pred = logits.argmax(1)[valid]
            hist = torch.bincount(gt * num + pred, minlength=num * num)
            confusions[key] = confusions.get(key, 0) + hist.view(num, num)
    results = {}
    for key, conf in confusions.items():
        conf = conf.double()
        tp = conf.diag()
        acc = tp / conf.sum(1).clamp(min=1)
        iou = tp / (conf.sum(1) + conf.sum(0) - tp).clamp(min=1)
        entry = dict(
            pixel_acc=round(float(tp.sum() / conf.sum()), 4),
            mean_acc=round(float(acc.mean()), 4),
            miou=round(float(iou.mean()), 4),
            acc={n: round(float(acc[k]), 4) for k, n in enumerate(names)},
            iou={n: round(float(iou[k]), 4) for k, n in enumerate(names)})
        if unseen:
            for part, members in (('seen', [n not in unseen for n in names]),
                                  ('unseen', [n in unseen for n in names])):
                members = torch.tensor(members)
                entry[f'{part}_pixel_acc'] = round(float(
                    tp[members].sum() / conf[members].sum()), 4)
                entry[f'{part}_miou'] = round(float(iou[members].mean()), 4)
            s, u = entry['seen_miou'], entry['unseen_miou']
            entry['hiou'] = round(2 * s * u / (s + u), 4) if s + u else 0.0
        results[key] = entry
    return results


def print_report(cls_metrics, dense, names, unseen):
    print(f'\nZero-shot classification (prompt "{tc.TOY_PROMPT}"), held-out '
          'single objects:')
    print(f'  top-1 {cls_metrics["top1"]:.3f}')
    print('  ' + '  '.join(f'{n} {a:.2f}'
                           for n, a in cls_metrics['per_class'].items()))
    print('\nTraining-free dense baseline on world val images (object pixels;'
          ' patch tokens -> ln_post -> proj vs class text embeddings):')
    keys = sorted(k for k in dense if k.startswith('layer'))
    keys = sorted(keys, key=lambda k: int(k[5:])) + ['maskclip']
    head = f'  {"feature":<9} {"pixAcc":>7} {"mAcc":>6} {"mIoU":>6}'
    if unseen:
        head += f' {"seenAcc":>8} {"unseenAcc":>9} {"hIoU":>6}'
    print(head)
    for key in keys:
        e = dense[key]
        line = (f'  {key:<9} {e["pixel_acc"]:7.3f} {e["mean_acc"]:6.3f} '
                f'{e["miou"]:6.3f}')
        if unseen:
            line += (f' {e["seen_pixel_acc"]:8.3f} '
                     f'{e["unseen_pixel_acc"]:9.3f} {e["hiou"]:6.3f}')
        print(line)
    last = keys[-2]
    print(f'\n  per-class pixel accuracy ({last} | maskclip):')
    for n in names:
        mark = ' (unseen)' if unseen and n in unseen else ''
        print(f'    {n:<10} {dense[last]["acc"][n]:.3f} | '
              f'{dense["maskclip"]["acc"][n]:.3f}{mark}')


def main(argv=None):
    args = parse_args(argv)
    set_determinism(args.seed, args.threads)
    cfg = dict(tc.TOY_CLIP_CFG)
    names = list(tw.CLASS_NAMES if args.categories is None else
                 [c.name for c in tw.get_categories(args.categories)])
    unseen = list(args.unseen or [])
    unknown = [n for n in unseen if n not in names]
    if unknown:
        raise SystemExit(f'--unseen {unknown} are not classes of {names}.')
    os.makedirs(args.out_dir, exist_ok=True)
    path = osp.join(args.out_dir, WEIGHTS)
    if args.eval_only:
        log = dict(train_time_s=0.0)
        with open(path, 'rb') as file:
            digest = hashlib.sha256(file.read()).hexdigest()
    else:
        print(f'Toy CLIP: {args.steps} steps of {args.batch_size} pairs, '
              f'{len(names)} classes {names}, seed {args.seed}, '
              f'{args.threads} threads', flush=True)
        model, log = train(args, cfg, names)
        path, digest = save(model, cfg, args, args.out_dir)
    model, cfg = load(args.out_dir)  # evaluate what was saved
    size = (cfg['vision_cfg']['image_size'], ) * 2
    print(f'Evaluating: {args.eval_per_class * len(names)} held-out images, '
          f'{args.eval_scenes} world val images', flush=True)
    cls_metrics = evaluate_classification(model, names, args, size)
    dense = evaluate_dense(model, names, args, size, unseen)
    print_report(cls_metrics, dense, names, unseen)
    file_size = osp.getsize(path)
    report = dict(args=vars(args), config=cfg, classes=names, weights=WEIGHTS,
                  sha256=digest, size_bytes=file_size, **log,
                  classification=cls_metrics, dense=dense)
    if args.eval_only:
        print(f'\nEvaluated {path} (sha256 {digest[:16]}...).')
        return report
    with open(osp.join(args.out_dir, REPORT), 'w') as file:
        json.dump(report, file, indent=2, sort_keys=True)
        file.write('\n')
    print(f'\nTrained in {log["train_time_s"]:.0f}s. Weights: {path} '
          f'({file_size / 2**20:.2f} MiB, sha256 {digest[:16]}...), config: '
          f'{osp.join(args.out_dir, CONFIG)}')
    return report

