# ZegOT on the toy world, transductive: all 12 shape names are known in
# training; pixels of the unseen shapes are unlabeled and get pseudo-labels
# from the model's own detached prediction over the unseen shapes. Continues
# an inductive zegot_toy.py run for 1000 more iterations: pass its
# checkpoint, e.g.
#   python tools/train.py \
#       projects/toy_world/configs/zegot_toy_transductive.py \
#       --cfg-options load_from=work_dirs/zegot_toy/iter_2000.pth
# (The paper configs start from the half-way inductive checkpoint; the toy
# inductive runs keep only their final one.)
_base_ = ['./zegot_toy.py']
load_from = 'work_dirs/zegot_toy/iter_2000.pth'
model = dict(setting='transductive', decode_head=dict(seen_bias=0.0))
max_iters = 1000
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
         end=50),
    dict(type='PolyLR', power=0.9, eta_min=1e-6, by_epoch=False, begin=50,
         end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    checkpoint=dict(interval=max_iters),
    # A missing `load_from` stops the run at start-up, naming its source.
    load_from_check=dict(
        type='ZegOTLoadFromCheckHook',
        source_config='projects/toy_world/configs/zegot_toy.py',
        source_iter=2000))
