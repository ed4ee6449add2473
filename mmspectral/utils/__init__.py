from .benchmarking import (add_timing_options, describe_machine, format_table,
                           median_time, median_times, native_stderr_silenced,
                           parse_timing_args, print_report, relative_error)

__all__ = [
    'add_timing_options', 'describe_machine', 'format_table', 'median_time',
    'median_times', 'native_stderr_silenced', 'parse_timing_args',
    'print_report', 'relative_error'
]
