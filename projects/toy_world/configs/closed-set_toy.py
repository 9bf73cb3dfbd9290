# Closed-set baseline on the toy world: a stock mmseg FCN head on the same
# frozen toy CLIP (its DLFA taps as plain feature maps), trained on the seen
# shapes only (unseen pixels ignored by ZegOTZeroShotLabels), tested on all
# 12 shapes with the same metric. It has no way to name an unseen shape.
_base_ = [
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
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[122.771, 116.746, 104.094],
        std=[68.501, 65.579, 66.632],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=crop_size),
    backbone=dict(
        type='ZegOTCLIPVisionTransformer',
        out_indices=(2, 3, 4, 5),
        output_global=False,
        **clip),
    decode_head=dict(
        type='FCNHead',
        in_channels=128,
        in_index=3,
        channels=128,
        num_convs=2,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=12,
        norm_cfg=dict(type='BN', requires_grad=True),
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='ZegOTZeroShotLabels', setting='inductive',
         zero_shot_split={{_base_.zero_shot_split}}),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
max_iters = 2000  # as zegot_toy.py
optim_wrapper = dict(
    optimizer=dict(lr=1e-3), paramwise_cfg=dict(_delete_=True))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=100),
    dict(type='PolyLR', power=0.9, eta_min=1e-6, by_epoch=False, begin=100,
         end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=max_iters, save_best=None, max_keep_ckpts=1))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
