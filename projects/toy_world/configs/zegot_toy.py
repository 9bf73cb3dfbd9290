# ZegOT on the embedded toy zero-shot world (the README's main job): the real
# model config with every [ours] choice as it is, only smaller. The frozen
# CLIP is the project's toy CLIP (6-layer ViT, 8 px patches, 64 px images),
# pretrained by projects/toy_world/tools/pretrain_clip.py on captions
# describing every shape; ZegOT trains on the seen shapes only and is tested
# on all 12.
_base_ = [
    '../../../configs/_base_/models/zegot_vit-b16.py',
    './_base_/datasets/zegot_toy.py',
    '../../../configs/_base_/default_runtime.py',
    '../../../configs/_base_/schedules/zegot_schedule_20k.py',
]
# The project's package registers the toy world's dataset and split 'toy'
# (run from the repository root, or put it on PYTHONPATH); the base
# runtime's 'mmseg_zegot.safe_loading' opt-in stays.
custom_imports = dict(
    imports=['mmseg_zegot', 'mmseg_zegot.safe_loading',
             'projects.toy_world.toy_world'],
    allow_failed_imports=False)
clip = dict(
    model_name='toy-clip',
    model_cfg='projects/toy_world/assets/toy_clip/toy_clip.json',
    pretrained='projects/toy_world/assets/toy_clip/toy_clip.pth',
    quick_gelu=False)
crop_size = (64, 64)
model = dict(
    zero_shot_split={{_base_.zero_shot_split}},
    data_preprocessor=dict(size=crop_size),
    # The 6-layer toy ViT: taps at the same relative depths as (5, 7, 9, 11)
    # of ViT-B/16's 12 layers.
    image_encoder=dict(out_indices=(2, 3, 4, 5), **clip),
    text_encoder=dict(prompt_length=8, **clip),
    test_cfg=dict(mode='whole'))
# A short CPU schedule: same optimizer and shapes of schedule, fewer steps.
# 2000 iterations: seen mIoU still climbs from 1000 to 2000 (toward the
# closed-set baseline) while unseen mIoU is flat from 500 on (measured, see
# docs/toy_benchmark.md).
max_iters = 2000
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
         end=100),
    dict(type='PolyLR', power=0.9, eta_min=1e-6, by_epoch=False, begin=100,
         end=max_iters),
]
optim_wrapper = dict(optimizer=dict(lr=1e-4))
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=max_iters, save_best=None, max_keep_ckpts=1))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
