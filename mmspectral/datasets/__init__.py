"""Dataset helpers: generators of tiny datasets in real on-disk formats, and
running any config on them."""
from .tiny_configs import TINY_CONFIG_NAMES, tiny_config_name, use_tiny_data
from .tiny_data import (TINY_COCO_CLASSES, make_tiny_cityscapes,
                        make_tiny_coco, make_tiny_datasets)

__all__ = [
    'TINY_COCO_CLASSES', 'make_tiny_coco', 'make_tiny_cityscapes',
    'make_tiny_datasets', 'TINY_CONFIG_NAMES', 'tiny_config_name',
    'use_tiny_data'
]
