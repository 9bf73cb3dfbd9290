# ZegOT, ViT-B/16, PASCAL VOC 2012 (+aug), inductive zero-shot: trained on
# the 15 seen classes (unseen pixels ignored), tested on all 20.
# 4 GPUs x 4 images, 20k iterations, 512x512 crops, slide inference 512/426.
_base_ = [
    '../_base_/models/zegot_vit-b16.py',
    '../_base_/datasets/zegot_voc12_aug.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/zegot_schedule_20k.py',
]
crop_size = (512, 512)
model = dict(
    zero_shot_split='voc',
    setting='inductive',
    data_preprocessor=dict(size=crop_size),
    # Slide crop 512, stride 426: ZegCLIP's and OTSeg's
    # configs/voc12/vpt_seg_zero_vit-b_512x512_20k_12_10.py (`test_cfg`).
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(426, 426)))
# Keep the half-way checkpoint, which zegot_vitb16_voc_transductive.py
# loads, whatever `max_keep_ckpts` deletes (spec §10).
default_hooks = dict(checkpoint=dict(keep_iters=[10000]))
