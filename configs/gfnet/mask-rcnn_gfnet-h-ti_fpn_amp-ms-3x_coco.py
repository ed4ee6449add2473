_base_ = './mask-rcnn_gfnet-h-ti_fpn_ms-3x_coco.py'

# mixed precision; the spectral layers keep their FFTs in float32
optim_wrapper = dict(type='AmpOptimWrapper')
