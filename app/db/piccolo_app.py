import os

from piccolo.conf.apps import AppConfig

from app.db.tables import all_tables

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

APP_CONFIG = AppConfig(
    app_name="photos",
    migrations_folder_path=os.path.join(PROJECT_ROOT, "migrations"),
    table_classes=all_tables(),
    migration_dependencies=[],
    commands=[],
)
