# ZegOT, ViT-B/16, PASCAL VOC, inductive, on ONE GPU: batch 4 with 4-step
# gradient accumulation keeps the effective batch of 16. Schedulers step per
# iteration (one micro-batch), so every length is 4x the 4-GPU config's:
# 80k iterations = 20k optimizer steps.
_base_ = ['./zegot_vitb16_voc.py']
optim_wrapper = dict(accumulative_counts=4)
max_iters = 80000
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
         end=6000),
    dict(type='PolyLR', power=0.9, eta_min=1e-6, by_epoch=False, begin=6000,
         end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=8000)
# The half-way checkpoint kept is that of step 10k: iteration 40k.
default_hooks = dict(checkpoint=dict(interval=8000, keep_iters=[40000]))
