"""Attendance reports (docs/attendance-record.md, "Reports"): a session's roll, a student over a
date range, a course over a term. `rates` is the arithmetic (pure), `queries` reads MySQL,
`export` writes each report as CSV, `schemas` is what the API answers."""
