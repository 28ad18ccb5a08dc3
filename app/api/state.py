"""Services shared by the HTTP apps and workers of one process, built once at start."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

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

    @cached_property
    def login_throttle(self):
        """The password-guess throttle over this process's Redis (None without one), made once."""
        from app.domain.login_throttle import throttle_for

        return throttle_for(self.queue.pool if self.queue else None, self.settings)

    @classmethod
    def build(cls, settings: Settings, queue: JobQueue | None = None) -> "Shared":
        return cls(
            settings=settings,
            store=BlobStore(settings.data_dir),
            signer=UrlSigner(settings.secret_key()),
            queue=queue,
        )
