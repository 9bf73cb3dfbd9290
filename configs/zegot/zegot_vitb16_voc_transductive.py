# ZegOT, ViT-B/16, PASCAL VOC, transductive: all 20 class names are known in
# training; unseen pixels are unlabeled and get pseudo-labels from the
# model's own detached prediction over the unseen classes. Starts from the
# half-way (10k) inductive checkpoint and trains 10k more iterations.
_base_ = ['./zegot_vitb16_voc.py']
load_from = 'work_dirs/zegot_vitb16_voc/iter_10000.pth'
default_hooks = dict(
    # Nothing loads this run's checkpoints part-way: the last
    # `max_keep_ckpts` are enough.
    checkpoint=dict(keep_iters=[]),
    # A missing `load_from` stops the run at start-up, naming its source.
    load_from_check=dict(
        type='ZegOTLoadFromCheckHook',
        source_config='configs/zegot/zegot_vitb16_voc.py',
        source_iter=10000))
model = dict(setting='transductive', decode_head=dict(seen_bias=0.0))
max_iters = 10000
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
         end=1500),
    dict(type='PolyLR', power=0.9, eta_min=1e-6, by_epoch=False, begin=1500,
         end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=2000)
