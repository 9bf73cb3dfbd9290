# ZegOT, ViT-B/16, COCO-Stuff 164k, fully supervised (the upper bound).
_base_ = ['./zegot_vitb16_coco-stuff.py']
model = dict(setting='fully', decode_head=dict(seen_bias=0.0))
# No transductive run starts from this one: no half-way checkpoint to keep.
default_hooks = dict(checkpoint=dict(keep_iters=[]))
