"""Building the Runner of a config, and the model alone, in the config's
scope. The tools' Runner keeps every config record a work dir already
holds, and checks each data loader it builds (see
:mod:`mmspectral.engine.data_checks`)."""
import os.path as osp

from mmengine.config import Config
from mmengine.dist import master_only
from mmengine.logging import print_log
from mmengine.registry import MODELS, RUNNERS, DefaultScope
from mmengine.runner import Runner

from .data_checks import empty_dataset_error, guard_data_loader

__all__ = ['build_runner', 'build_model']


def _raised_in(err: BaseException, function: str) -> bool:
    tb = err.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name == function:
            return True
        tb = tb.tb_next
    return False


class _ToolRunner:
    """Runner mixin of the tools.

    * The config dump goes to ``work_dir/<config name>`` only if that file is
      absent or identical; otherwise (another run's record, a test run in a
      training work dir) into the run's timestamped log folder, so no
      earlier record is overwritten.
    * Every data loader is checked as it is built: an empty dataset is an
      error (mmengine cannot serialise an empty data list, and an infinite
      sampler over one would wait forever), and its pipeline steps name the
      sample they fail on.
    """

    @classmethod
    def build_dataloader(cls, dataloader, seed=None, diff_rank_seed=False):
        try:
            loader = super().build_dataloader(
                dataloader, seed=seed, diff_rank_seed=diff_rank_seed)
        except ValueError as err:
            if isinstance(dataloader, dict) and _raised_in(
                    err, '_serialize_data'):
                raise empty_dataset_error(dataloader.get('dataset')) from None
            raise
        return guard_data_loader(loader)

    @master_only
    def dump_config(self) -> None:
        name = osp.basename(self.cfg.filename) if self.cfg.filename else \
            f'{self.timestamp}.py'
        target = osp.join(self.work_dir, name)
        text = self.cfg.dump()
        if osp.isfile(target):
            with open(target, encoding='utf-8') as f:
                if f.read() == text:
                    return
            target = osp.join(self.log_dir, name)
            print_log(f'{osp.join(self.work_dir, name)} records another run;'
                      f' this run\'s config is in {target}', logger='current')
        with open(target, 'w', encoding='utf-8') as f:
            f.write(text)


def build_runner(cfg: Config) -> Runner:
    """``Runner.from_cfg`` (or the config's ``runner_type``) with the tools'
    additions (:class:`_ToolRunner`)."""
    base = Runner
    if 'runner_type' in cfg:
        with RUNNERS.switch_scope_and_registry(
                cfg.get('default_scope')) as registry:
            base = registry.get(cfg.runner_type)
        if base is None:
            raise ValueError(f'unknown runner_type {cfg.runner_type!r}')
    runner_cls = type(base.__name__, (_ToolRunner, base), {})
    return runner_cls.from_cfg(cfg)


def build_model(cfg: Config):
    """The config's model, built in its default scope (as the Runner does),
    without creating anything on disk."""
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        return MODELS.build(cfg.model)
