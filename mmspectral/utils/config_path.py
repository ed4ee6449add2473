"""Where mmspectral's configs are: ``mmspectral/.mim/configs`` in an
installed wheel (the OpenMMLab layout, copied from ``configs/`` when the
wheel is built), ``configs/`` beside the package in a source checkout."""
import os.path as osp
from glob import glob

__all__ = ['config_root', 'get_config_path']

_PACKAGE = osp.dirname(osp.dirname(osp.abspath(__file__)))


def config_root() -> str:
    """The folder holding the config families (``gfnet/``, ``hornet/``,
    ...).

    Raises:
        FileNotFoundError: Neither an installed nor a source copy exists.
    """
    for root in (osp.join(_PACKAGE, '.mim', 'configs'),
                 osp.join(osp.dirname(_PACKAGE), 'configs')):
        if osp.isdir(root):
            return root
    raise FileNotFoundError(
        f'no configs beside {_PACKAGE}: expected .mim/configs in an '
        'installed mmspectral, or configs/ in a source checkout')


def get_config_path(name: str) -> str:
    """The path of a config of mmspectral.

    Args:
        name (str): ``'gfnet/gfnet-ti_8xb128_in1k'`` (family folder and
            name), or the name alone; ``.py`` may be given.

    Returns:
        str: The config file.

    Raises:
        FileNotFoundError: No config of that name (the message lists the
            closest names).
    """
    root = config_root()
    stem = name[:-3] if name.endswith('.py') else name
    direct = osp.join(root, f'{stem}.py')
    if '/' in stem and osp.isfile(direct):
        return direct
    found = sorted(glob(osp.join(root, '*', f'{osp.basename(stem)}.py')))
    if len(found) == 1 or (found and '/' not in stem):
        return found[0]
    import difflib
    names = [osp.relpath(p, root)[:-3]
             for p in glob(osp.join(root, '*', '*.py'))]
    close = difflib.get_close_matches(stem, names, n=3, cutoff=0.5)
    raise FileNotFoundError(
        f'no mmspectral config named {name!r} in {root}' +
        (f'; did you mean {" or ".join(map(repr, close))}?' if close else ''))
