from .checks import (ConfigError, check_backbone_archs,
                     check_checkpoint_matches, check_config, check_data_paths,
                     check_pretrained, check_type_names, read_config)
from .data_checks import DataCheckHook, DataError, guard_data_loader
from .distributed import CPUDistributedDataParallel, setup_cpu_distributed
from .hooks import (CuFFTPlanCacheHook, ExactResumeHook, FiniteCheckHook,
                    TrainingDiverged)
from .optimizers import LayerDecayOptimizerConstructor
from .run_setup import (DictAction, add_custom_hook, add_exact_resume,
                        add_prediction_dump, add_run_arguments, add_run_hooks,
                        bound_cufft_plan_cache, check_output_path, enable_amp,
                        enable_visualization, error_message, fit_amp_to_device,
                        load_config, reported_errors)
from .runner import build_model, build_runner
from .workdir import (AtomicLocalBackend, WorkDirError, WorkDirLock,
                      claim_work_dir, is_main_process,
                      latest_readable_checkpoint, write_checkpoints_atomically)

__all__ = [
    'ConfigError', 'check_backbone_archs', 'check_checkpoint_matches',
    'check_config', 'check_data_paths', 'check_pretrained',
    'check_type_names', 'read_config', 'CPUDistributedDataParallel',
    'setup_cpu_distributed', 'CuFFTPlanCacheHook', 'DataCheckHook',
    'DataError', 'guard_data_loader', 'ExactResumeHook', 'FiniteCheckHook',
    'TrainingDiverged',
    'LayerDecayOptimizerConstructor', 'DictAction', 'add_custom_hook',
    'add_exact_resume', 'add_prediction_dump', 'add_run_arguments',
    'add_run_hooks', 'bound_cufft_plan_cache', 'check_output_path',
    'enable_amp', 'error_message', 'reported_errors',
    'enable_visualization', 'fit_amp_to_device', 'load_config',
    'build_model', 'build_runner', 'AtomicLocalBackend', 'WorkDirError',
    'WorkDirLock', 'claim_work_dir', 'is_main_process',
    'latest_readable_checkpoint', 'write_checkpoints_atomically'
]
