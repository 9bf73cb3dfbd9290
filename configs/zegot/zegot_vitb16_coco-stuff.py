# ZegOT, ViT-B/16, COCO-Stuff 164k, inductive zero-shot: trained on the 156
# seen classes, tested on all 171.
# 4 GPUs x 4 images, 80k iterations, 512x512 crops, slide inference 512/426.
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
    # Slide crop 512, stride 426: ZegCLIP's and OTSeg's
    # configs/coco/vpt_seg_zero_vit-b_512x512_80k_12_100_multi.py (`test_cfg`).
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(426, 426)))
# Keep the half-way checkpoint, which zegot_vitb16_coco-stuff_transductive.py
# loads, whatever `max_keep_ckpts` deletes (spec §10).
default_hooks = dict(checkpoint=dict(keep_iters=[40000]))
