"""Everything prunex shows on a console (rich tables, progress bars, lines), one module per command; the library
reports through return values and observers and prints nothing."""

from prunex.cli.views.bench import print_bench, print_bench_row
from prunex.cli.views.compress import print_report
from prunex.cli.views.export import int8_lines
from prunex.cli.views.inspect import print_summary

__all__ = ["int8_lines", "print_bench", "print_bench_row", "print_report", "print_summary"]
