# Cross-dataset evaluation: the COCO-Stuff model (inductive) tested on PASCAL
# Context-59 val with Context's 59 class names as the vocabulary. Test only:
#   python tools/test.py configs/zegot/zegot_vitb16_coco-stuff_eval-context59.py \
#       work_dirs/zegot_vitb16_coco-stuff/iter_80000.pth
# mIoU is the cross-dataset number; seen/unseen/hIoU refer to Context's split.
_base_ = ['./zegot_vitb16_coco-stuff.py']
model = dict(
    zero_shot_split='context59',
    decode_head=dict(seen_bias=0.0))
# Slide inference as the COCO-Stuff model's own, 512/426: ZegCLIP's and
# OTSeg's configs/cross_dataset/coco-to-context.py (`test_cfg`).
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(520, 520), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ZegOTPascalContext59Dataset',
        data_root='data/VOCdevkit/VOC2010/',
        zero_shot_split='context59',
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClassContext'),
        ann_file='ImageSets/SegmentationContext/val.txt',
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# Test only: no training loop, so this config can never train on the
# COCO labels with another dataset's vocabulary.
train_dataloader = None
train_cfg = None
optim_wrapper = None
param_scheduler = None
