# COCO-Stuff 164k, 171 classes, with the zero-shot split 'coco-stuff'
# (156 seen / 15 unseen) in the dataset metainfo.
# Layout and preparation: docs/data_preparation.md.
dataset_type = 'ZegOTCOCOStuffDataset'
data_root = 'data/coco_stuff164k'
zero_shot_split = 'coco-stuff'
crop_size = (512, 512)
img_scale = (2048, 512)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale=img_scale,
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
# A corrupted image or label file stops the run with an error naming it;
# `skip_corrupted=True` on a dataset skips such samples with a warning
# instead (left out of val/test sets, which set `test_mode=True`; see
# docs/reliability.md).
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        zero_shot_split=zero_shot_split,
        data_prefix=dict(
            img_path='images/train2017', seg_map_path='annotations/train2017'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        zero_shot_split=zero_shot_split,
        test_mode=True,
        data_prefix=dict(
            img_path='images/val2017', seg_map_path='annotations/val2017'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='ZeroShotIoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
