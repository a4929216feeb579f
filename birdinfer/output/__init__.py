"""What a run writes: the submission, the per-window table and the run report, each put in
place atomically, and every path checked before any work.

The submission: `ROW_ID`, `read_class_columns` and `read_row_ids` (a sample submission's columns
and rows), `column_order` (model classes -> submission columns), `submission_frame` (the rows of
scored files), `build_submission` (the same from row ids and scores) and `write_submission`.
The per-window table: `windows_frame`, `write_windows`, `write_run_windows` and
`read_windows_table`. The run report: `build_report`, `write_report`, `report_path_for`,
`placeholder_warning` and `summary` (what a run prints). The paths: `check_outputs` (refuses an
output that cannot be written, or that would replace an input) and `journal_path_for`.
"""

from birdinfer.output.paths import check_outputs, journal_path_for
from birdinfer.output.report import (
    build_report,
    placeholder_warning,
    report_path_for,
    summary,
    write_report,
)
from birdinfer.output.submission import (
    ROW_ID,
    build_submission,
    column_order,
    read_class_columns,
    read_row_ids,
    submission_frame,
    write_submission,
)
from birdinfer.output.windows_table import (
    read_windows_table,
    windows_frame,
    write_run_windows,
    write_windows,
)

__all__ = [
    "ROW_ID",
    "build_report",
    "build_submission",
    "check_outputs",
    "column_order",
    "journal_path_for",
    "placeholder_warning",
    "read_class_columns",
    "read_row_ids",
    "read_windows_table",
    "report_path_for",
    "submission_frame",
    "summary",
    "windows_frame",
    "write_report",
    "write_run_windows",
    "write_submission",
    "write_windows",
]
