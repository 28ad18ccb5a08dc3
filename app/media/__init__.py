"""Media work (metadata, pixels, video). Pure functions on files; no database, no HTTP.

Everything here is blocking and CPU-bound: callers run it in worker threads.
"""
