from .checks import (ConfigError, check_backbone_archs,
                     check_checkpoint_matches, check_config, check_data_paths)
from .distributed import CPUDistributedDataParallel, setup_cpu_distributed
from .hooks import CuFFTPlanCacheHook, ExactResumeHook
from .optimizers import LayerDecayOptimizerConstructor
from .runner import (DictAction, add_exact_resume, add_prediction_dump,
                     add_run_arguments, bound_cufft_plan_cache, build_model,
                     build_runner, enable_amp, enable_visualization,
                     fit_amp_to_device, load_config)

__all__ = [
    'ConfigError', 'check_backbone_archs', 'check_checkpoint_matches',
    'check_config', 'check_data_paths', 'CPUDistributedDataParallel',
    'setup_cpu_distributed', 'CuFFTPlanCacheHook', 'ExactResumeHook',
    'LayerDecayOptimizerConstructor', 'DictAction',
    'add_exact_resume', 'add_prediction_dump', 'add_run_arguments',
    'bound_cufft_plan_cache',
    'build_model', 'build_runner',
    'enable_amp', 'enable_visualization', 'fit_amp_to_device', 'load_config'
]
