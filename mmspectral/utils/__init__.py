from .timing import format_table, median_time, median_times, print_report

__all__ = ['format_table', 'median_time', 'median_times', 'print_report']
