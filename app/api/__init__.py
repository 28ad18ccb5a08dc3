"""The native (Gumnut-shaped) HTTP API."""
