"""Self-hosted photo and video server: one domain behind a native API and an Immich shim."""

__version__ = "0.1.0"
