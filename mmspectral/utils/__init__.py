from .timing import format_table, median_time, print_report

__all__ = ['format_table', 'median_time', 'print_report']
