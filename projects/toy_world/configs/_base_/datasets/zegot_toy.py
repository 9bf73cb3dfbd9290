# The procedural toy world of the embedded benchmark (projects/toy_world/):
# 12 shapes in VOC's layout with PNG images, 64x64. The split is a parameter:
# class names of the 'toy' classes (override `unseen_classes` to choose
# another). The dataset type and the split are registered by the project's
# package (the leaf configs' `custom_imports`).
dataset_type = 'ZegOTToyWorldDataset'
data_root = 'data/toy_world'
zero_shot_split = dict(name='toy', unseen_classes=['star', 'moon', 'flower'])
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
# A corrupted image or label file stops the run with an error naming it;
# `skip_corrupted=True` on a dataset skips such samples with a warning
# instead (left out of val/test sets, which set `test_mode=True`; see
# docs/reliability.md).
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        zero_shot_split=zero_shot_split,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/train.txt',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        zero_shot_split=zero_shot_split,
        test_mode=True,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/val.txt',
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='ZeroShotIoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
