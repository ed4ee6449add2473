from .benchmarking import (describe_machine, format_table, median_time,
                           median_times, native_stderr_silenced, print_report)

__all__ = [
    'describe_machine', 'format_table', 'median_time', 'median_times',
    'native_stderr_silenced', 'print_report'
]
