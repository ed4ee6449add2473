from mmspectral.checkpoint import CheckpointError
from .afno import build_afno_backbone, convert_afno, infer_afno_arch
from .common import (backbone_part, check_family, check_loads, detect_family,
                     load_official_state_dict, rename_keys, run_converter,
                     save_checkpoint)
from .gfnet import build_gfnet_backbone, convert_gfnet, infer_gfnet_arch
from .hornet import build_hornet_backbone, convert_hornet, infer_hornet_arch
from .spectformer import (build_spectformer_backbone, convert_spectformer,
                          infer_spectformer_arch)

__all__ = [
    'CheckpointError', 'backbone_part', 'check_family', 'check_loads',
    'detect_family', 'load_official_state_dict', 'rename_keys',
    'run_converter', 'save_checkpoint', 'build_gfnet_backbone',
    'convert_gfnet', 'infer_gfnet_arch', 'build_afno_backbone',
    'convert_afno', 'infer_afno_arch', 'build_hornet_backbone',
    'convert_hornet', 'infer_hornet_arch', 'build_spectformer_backbone',
    'convert_spectformer', 'infer_spectformer_arch'
]
