# ZegOT, ViT-B/16, PASCAL Context-59, inductive zero-shot: trained on the 49
# seen classes, tested on all 59 (background ignored).
# 4 GPUs x 4 images, 40k iterations, 480x480 crops, slide inference 480/80.
_base_ = [
    '../_base_/models/zegot_vit-b16.py',
    '../_base_/datasets/zegot_context59.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/zegot_schedule_40k.py',
]
crop_size = (480, 480)
model = dict(
    zero_shot_split='context59',
    setting='inductive',
    data_preprocessor=dict(size=crop_size),
    # Slide crop 480, stride 80: OTSeg's configs/context/vpt_context_vpt.py
    # (`test_cfg`; ZegCLIP publishes no Context-59 config).
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(80, 80)))
# Keep the half-way checkpoint, which zegot_vitb16_context59_transductive.py
# loads, whatever `max_keep_ckpts` deletes (spec §10).
default_hooks = dict(checkpoint=dict(keep_iters=[20000]))
