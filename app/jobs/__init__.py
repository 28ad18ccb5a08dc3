"""Background work on arq. Jobs receive the process's Shared services in ctx."""
