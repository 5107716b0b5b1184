"""Exports of the catalogue for other systems: METS with PREMIS (mets.py builds, schema.py
validates offline, publish.py writes to stdout, a file or the output bucket)."""
