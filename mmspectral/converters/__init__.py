from .common import (CheckpointError, backbone_part, check_loads,
                     load_official_state_dict, rename_keys, run_converter,
                     save_checkpoint)
from .gfnet import build_gfnet_backbone, convert_gfnet, infer_gfnet_arch

__all__ = [
    'CheckpointError', 'backbone_part', 'check_loads',
    'load_official_state_dict', 'rename_keys', 'run_converter',
    'save_checkpoint', 'build_gfnet_backbone', 'convert_gfnet',
    'infer_gfnet_arch'
]
