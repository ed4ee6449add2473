"""Dataset helpers: generators of tiny datasets in real on-disk formats."""
from .tiny_data import (TINY_COCO_CLASSES, make_tiny_cityscapes,
                        make_tiny_coco, make_tiny_datasets)

__all__ = [
    'TINY_COCO_CLASSES', 'make_tiny_coco', 'make_tiny_cityscapes',
    'make_tiny_datasets'
]
