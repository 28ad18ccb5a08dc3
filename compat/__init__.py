"""Immich v3 translation layer (DTOs, id and field mapping, routes, sync, socket.io).

It calls app.domain for every behaviour and holds no business rules of its own.
"""
