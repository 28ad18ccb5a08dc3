import os

from piccolo.conf.apps import AppConfig

from app.db.tables import ApiKey, Asset, Event, Library, User

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

APP_CONFIG = AppConfig(
    app_name="photos",
    migrations_folder_path=os.path.join(PROJECT_ROOT, "migrations"),
    table_classes=[User, Library, ApiKey, Asset, Event],
    migration_dependencies=[],
    commands=[],
)
