"""mpr: batch importer and transcoder for audiovisual archives."""

__version__ = "0.1.0"
