"""`mpr fixity` (issue 14): re-verify catalogued files, least recently verified first.

budget.py   sizes, durations and budgets (pure; config.py validates MPR_FIXITY_* with it)
outcome.py  what a check found (quick from a listing's size and ETag, full from the bytes)
report.py   the run's counts, problems and JSON report (the shape notify and metrics read)
run.py      selection, the quick and full passes, recording each check with its event

This package imports nothing at import time: config.py imports `budget` from it.
"""
