# ZegOT, ViT-B/16, COCO-Stuff 164k, inductive zero-shot: trained on the 156
# seen classes, tested on all 171.
# 4 GPUs x 4 images, 80k iterations, 512x512 crops, slide inference 512/341.
_base_ = [
    '../_base_/models/zegot_vit-b16.py',
    '../_base_/datasets/zegot_coco-stuff164k.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/zegot_schedule_80k.py',
]
crop_size = (512, 512)
model = dict(
    zero_shot_split='coco-stuff',
    setting='inductive',
    data_preprocessor=dict(size=crop_size),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))
