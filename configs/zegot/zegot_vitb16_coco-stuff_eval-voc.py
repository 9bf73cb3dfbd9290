# Cross-dataset evaluation: the COCO-Stuff model (inductive) tested on PASCAL
# VOC 2012 val with VOC's 20 class names as the vocabulary. Test only:
#   python tools/test.py configs/zegot/zegot_vitb16_coco-stuff_eval-voc.py \
#       work_dirs/zegot_vitb16_coco-stuff/iter_80000.pth
# mIoU is the cross-dataset number; seen/unseen/hIoU refer to VOC's split.
_base_ = ['./zegot_vitb16_coco-stuff.py']
model = dict(
    zero_shot_split='voc',
    # COCO's seen classes are not VOC's: no seen-class calibration.
    decode_head=dict(seen_bias=0.0))
# Slide inference as the COCO-Stuff model's own, 512/426: ZegCLIP's
# configs/cross_dataset/coco-to-voc.py (`test_cfg`; OTSeg's uses stride 380).
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ZegOTPascalVOC20Dataset',
        data_root='data/VOCdevkit/VOC2012',
        zero_shot_split='voc',
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/val.txt',
        test_mode=True,
        pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
# Test only: no training loop, so this config can never train on the
# COCO labels with another dataset's vocabulary.
train_dataloader = None
train_cfg = None
optim_wrapper = None
param_scheduler = None
