"""The three phases of an import: discover (1), cross-reference (2), ingest (3).

Phases never print or exit: they return results and report progress through callbacks.
"""
