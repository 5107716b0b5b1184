"""Pure validation: data in, problems out. No I/O, never imports storage, db or subprocess.

- `inventory`: phase 1 on one key (code, folder, extension, role) -> Candidate or Problem
- `sidecars`: checksum / metadata / QC-report sidecar bytes -> parsed result or Problem
- `containers`: `MediaInfo` and the container rules for masters and streaming copies
- `mime`: MIME types by container and by sidecar extension
"""
