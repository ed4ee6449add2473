"""What the demo and the tests run on: generators of tiny datasets in the
real on-disk formats, and any config moved onto them. Not part of the
library API the models use."""
from .tiny_configs import (TINY_CONFIG_NAMES, short_run, tiny_config_file,
                           tiny_config_name, use_tiny_data)
from .tiny_data import (TINY_COCO_CLASSES, make_tiny_cityscapes,
                        make_tiny_coco, make_tiny_datasets)

__all__ = [
    'TINY_COCO_CLASSES', 'make_tiny_coco', 'make_tiny_cityscapes',
    'make_tiny_datasets', 'TINY_CONFIG_NAMES', 'tiny_config_name',
    'tiny_config_file', 'use_tiny_data', 'short_run'
]
