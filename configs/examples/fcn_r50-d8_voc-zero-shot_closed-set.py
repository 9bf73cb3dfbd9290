# Mixing example 1: our zero-shot split and metric around a stock mmseg model.
# A closed-set FCN (ResNet-50) trained on VOC's 15 seen classes with the
# unseen pixels ignored (ZegOTZeroShotLabels), evaluated on all 20 classes
# with ZeroShotIoUMetric (the ResNet-50 starts from mmseg's ImageNet weights,
# downloaded by mmseg). As expected of a closed-set model it cannot
# predict unseen classes: its mIoU.unseen stays near 0 (the baseline that
# zero-shot methods are measured against).
_base_ = [
    'mmseg::_base_/models/fcn_r50-d8.py',
    '../_base_/datasets/zegot_voc12_aug.py',
    '../_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_20k.py',
]
crop_size = (512, 512)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(norm_cfg=norm_cfg),
    decode_head=dict(num_classes=20, norm_cfg=norm_cfg),
    auxiliary_head=dict(num_classes=20, norm_cfg=norm_cfg))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='ZegOTZeroShotLabels', zero_shot_split='voc',
         setting='inductive'),
    dict(
        type='RandomResize',
        scale=(2048, 512),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    dataset=dict(datasets=[
        dict(
            type='ZegOTPascalVOC20Dataset',
            data_root='data/VOCdevkit/VOC2012',
            zero_shot_split='voc',
            data_prefix=dict(
                img_path='JPEGImages', seg_map_path='SegmentationClass'),
            ann_file='ImageSets/Segmentation/train.txt',
            pipeline=train_pipeline),
        dict(
            type='ZegOTPascalVOC20Dataset',
            data_root='data/VOCdevkit/VOC2012',
            zero_shot_split='voc',
            data_prefix=dict(
                img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
            ann_file='ImageSets/Segmentation/aug.txt',
            pipeline=train_pipeline),
    ]))
default_hooks = dict(
    checkpoint=dict(
        type='ZegOTCheckpointHook', save_best='hIoU', rule='greater'))
