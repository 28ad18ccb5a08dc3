"""Services shared by the HTTP apps and workers of one process, built once at start."""

from __future__ import annotations

from dataclasses import dataclass

from app.jobs.queue import JobQueue
from app.settings import Settings
from app.storage.blobstore import BlobStore
from app.storage.signing import UrlSigner


@dataclass
class Shared:
    settings: Settings
    store: BlobStore
    signer: UrlSigner
    queue: JobQueue | None = None

    @classmethod
    def build(cls, settings: Settings, queue: JobQueue | None = None) -> "Shared":
        return cls(
            settings=settings,
            store=BlobStore(settings.data_dir),
            signer=UrlSigner(settings.secret_key()),
            queue=queue,
        )
