"""Process settings, read once from the environment into one immutable struct."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import msgspec


class Settings(msgspec.Struct, frozen=True):
    data_dir: Path
    database_url: str | None
    redis_url: str | None
    host: str
    api_port: int
    immich_port: int
    public_url: str | None
    model_dir: Path
    worker_concurrency: int
    upload_chunk_size: int
    # Immich's facial-recognition defaults: detector score, cosine distance, DBSCAN core size
    face_min_score: float = 0.7
    face_max_distance: float = 0.5
    face_min_faces: int = 3
    # Largest request body an upload may send (file, sidecar and form fields together).
    max_upload_bytes: int = 50 << 30
    # An upload whose body sends nothing for this long is ended (408) and its temp file removed.
    upload_idle_timeout_seconds: float = 60.0
    # Password sign-in throttling; see app/domain/login_throttle.py for the rule.
    login_window_seconds: int = 900
    login_max_failures: int = 5  # per (account, client address)
    login_max_failures_per_address: int = 20  # per client address, over all accounts
    login_max_failures_per_account: int = 50  # per account, only for addresses that failed on it
    # A built Immich web app (index.html + _app/) the Immich listener serves at `/`; None: a page saying how.
    immich_web_dir: Path | None = None

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "tmp"

    @property
    def run_dir(self) -> Path:
        """Where a running server records how to reach its embedded services."""
        return self.data_dir / "run"

    def secret_key(self) -> bytes:
        """SECRET_KEY, or one generated into DATA_DIR on first use (signs media URLs)."""
        env = os.environ.get("SECRET_KEY")
        if env:
            return env.encode()
        path = self.data_dir / "secret.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
        return path.read_text().strip().encode()


def _redis_url_from_env() -> str | None:
    if url := os.environ.get("REDIS_URL"):
        return url
    # Immich's own names, so an Immich .env keeps working.
    if host := os.environ.get("REDIS_HOSTNAME"):
        return f"redis://{host}:{os.environ.get('REDIS_PORT', '6379')}"
    return None


def load_settings() -> Settings:
    env = os.environ
    data_dir = Path(env.get("DATA_DIR") or env.get("UPLOAD_LOCATION") or "./data").resolve()
    return Settings(
        data_dir=data_dir,
        database_url=env.get("DATABASE_URL") or env.get("DB_URL") or None,
        redis_url=_redis_url_from_env(),
        host=env.get("HOST", "0.0.0.0"),
        api_port=int(env.get("API_PORT", "8000")),
        immich_port=int(env.get("IMMICH_PORT", "2283")),
        public_url=(env.get("PUBLIC_URL") or "").rstrip("/") or None,
        model_dir=Path(env.get("MODEL_DIR") or data_dir / "models"),
        worker_concurrency=int(env.get("WORKER_CONCURRENCY", "4")),
        upload_chunk_size=int(env.get("UPLOAD_CHUNK_SIZE", str(1 << 20))),
        face_min_score=float(env.get("FACE_MIN_SCORE", "0.7")),
        face_max_distance=float(env.get("FACE_MAX_DISTANCE", "0.5")),
        face_min_faces=int(env.get("FACE_MIN_FACES", "3")),
        max_upload_bytes=int(env.get("MAX_UPLOAD_BYTES", str(50 << 30))),
        upload_idle_timeout_seconds=float(env.get("UPLOAD_IDLE_TIMEOUT_SECONDS", "60")),
        login_window_seconds=int(env.get("LOGIN_WINDOW_SECONDS", "900")),
        login_max_failures=int(env.get("LOGIN_MAX_FAILURES", "5")),
        login_max_failures_per_address=int(env.get("LOGIN_MAX_FAILURES_PER_ADDRESS", "20")),
        login_max_failures_per_account=int(env.get("LOGIN_MAX_FAILURES_PER_ACCOUNT", "50")),
        immich_web_dir=Path(env["IMMICH_WEB_DIR"]).resolve() if env.get("IMMICH_WEB_DIR") else None,
    )
