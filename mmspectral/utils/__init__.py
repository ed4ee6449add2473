from .benchmarking import (format_table, median_time, median_times,
                           native_stderr_silenced, print_report)

__all__ = [
    'format_table', 'median_time', 'median_times', 'native_stderr_silenced',
    'print_report'
]
