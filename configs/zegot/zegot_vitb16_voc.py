# ZegOT, ViT-B/16, PASCAL VOC 2012 (+aug), inductive zero-shot: trained on
# the 15 seen classes (unseen pixels ignored), tested on all 20.
# 4 GPUs x 4 images, 20k iterations, 512x512 crops, slide inference 512/341.
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
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))
