"""Transcoding: one job's stages and the jobs that run them.

`stages` (prepare, encode, finish: master -> checked output uploaded with its sidecars),
`outputs` (where an output may go, and its record in the catalogue), `workdirs` (the private
temp folders), `jobs` (the job store: `Job`, `JobStatus`, one function per state change),
`create` (making jobs), `jobrunner` (one claimed job through its stages), `pool` (the local
pool of ffmpeg processes) and `leases` (heartbeats and cancel). ffmpeg itself is `mpr_cli.ffmpeg`.

Submodules are imported explicitly; this package imports nothing.
"""
