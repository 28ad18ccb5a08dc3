"""Piccolo's entry point: the engine and the app registry.

The database URL comes from the environment; `python -m app ...` resolves it
(starting the embedded server when needed) before anything imports this.
"""

from piccolo.conf.apps import AppRegistry

from app.db.engine import engine

DB = engine()

APP_REGISTRY = AppRegistry(apps=["app.db.piccolo_app"])
