# Mixing example 2: the ZegOT components inside a config built on mmseg's own
# bases. mmseg's runtime and 20k SGD schedule are used as they are;
# `custom_imports` makes our components available ('mmseg_zegot') and opts
# in to weights-only checkpoint loading ('mmseg_zegot.safe_loading'), and the
# hooks below make the checkpoints load that way and survive a killed run,
# as configs/_base_/default_runtime.py and our schedules do.
_base_ = [
    '../_base_/models/zegot_vit-b16.py',
    '../_base_/datasets/zegot_voc12_aug.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_20k.py',
]
custom_imports = dict(imports=['mmseg_zegot', 'mmseg_zegot.safe_loading'],
                      allow_failed_imports=False)
custom_hooks = [
    dict(type='ZegOTPlainCheckpointHook'),
    dict(type='ZegOTStartupCheckHook'),
]
default_hooks = dict(checkpoint=dict(type='ZegOTCheckpointHook'))
crop_size = (512, 512)
model = dict(
    zero_shot_split='voc',
    data_preprocessor=dict(size=crop_size),
    # As configs/zegot/zegot_vitb16_voc.py (ZegCLIP's and OTSeg's VOC).
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(426, 426)))
# The frozen CLIP stays frozen under any optimizer; only the prompts, DLFA
# projections, text alignment and decoder train.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.001, momentum=0.9, weight_decay=0.0005))
