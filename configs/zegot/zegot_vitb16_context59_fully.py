# ZegOT, ViT-B/16, PASCAL Context-59, fully supervised (the upper bound).
_base_ = ['./zegot_vitb16_context59.py']
model = dict(setting='fully', decode_head=dict(seen_bias=0.0))
# No transductive run starts from this one: no half-way checkpoint to keep.
default_hooks = dict(checkpoint=dict(keep_iters=[]))
