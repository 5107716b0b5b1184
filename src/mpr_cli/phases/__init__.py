"""The three phases of an import: discover (1), cross-reference (2), ingest (3: fetch, then
decide with validation.assets), and insert (the end of 3: the batched writes).

Phases never print or exit: they return results and report progress through callbacks.
"""
