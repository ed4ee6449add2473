from .timing import format_table, median_time

__all__ = ['format_table', 'median_time']
