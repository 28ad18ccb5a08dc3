"""Use cases shared by the native API and the Immich shim. No HTTP here."""
