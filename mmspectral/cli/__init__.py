"""What the command-line tools (``tools/*.py``) are made of: the checks
before a run, the work-dir guard, the Runner of the tools, the launch and
CPU distributed setup, and each tool's ``main(argv)``.

Not imported by ``import mmspectral``: the models, converters and hooks
(:mod:`mmspectral.engine`) do not depend on it; of the deployment helpers,
only :func:`mmspectral.deploy.build.load_model` (a config's model with
checked weights) uses it.
"""
from .checkpoints import (check_checkpoint_matches, check_pretrained,
                          check_resume_argument, check_resume_checkpoint)
from .checks import (ConfigError, check_backbone_archs, check_config,
                     check_data_paths, check_rates, check_type_names,
                     read_config)
from .data_checks import NameSampleOnFailure, name_failing_samples
from .distributed import (CPUDistributedDataParallel, check_launcher,
                          is_main_process, setup_cpu_distributed)
from .run_setup import (DictAction, add_custom_hook, add_exact_resume,
                        add_prediction_dump, add_run_arguments, add_run_hooks,
                        bound_cufft_plan_cache, check_distinct_outputs,
                        check_output_path, enable_amp, enable_visualization,
                        error_message, fit_amp_to_device, load_config,
                        reported_errors)
from .runner import ToolRunner, build_model, build_run_model, build_runner
from .workdir import (AtomicLocalBackend, WorkDirError, WorkDirLock,
                      checkpoint_dir, claim_work_dir,
                      latest_readable_checkpoint, write_checkpoints_atomically)

__all__ = [
    'check_checkpoint_matches', 'check_pretrained', 'check_resume_argument',
    'check_resume_checkpoint', 'ConfigError', 'check_backbone_archs',
    'check_config', 'check_data_paths', 'check_rates', 'check_type_names',
    'read_config', 'NameSampleOnFailure', 'name_failing_samples',
    'CPUDistributedDataParallel', 'check_launcher', 'is_main_process',
    'setup_cpu_distributed', 'DictAction', 'add_custom_hook',
    'add_exact_resume', 'add_prediction_dump', 'add_run_arguments',
    'add_run_hooks', 'bound_cufft_plan_cache', 'check_distinct_outputs',
    'check_output_path', 'enable_amp', 'enable_visualization',
    'error_message', 'fit_amp_to_device', 'load_config', 'reported_errors',
    'ToolRunner', 'build_model', 'build_run_model', 'build_runner',
    'AtomicLocalBackend', 'WorkDirError', 'WorkDirLock', 'checkpoint_dir',
    'claim_work_dir', 'latest_readable_checkpoint',
    'write_checkpoints_atomically'
]
