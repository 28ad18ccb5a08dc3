"""The Immich web app on the Immich listener, served as the Immich server serves it.

`IMMICH_WEB_DIR` names a built web app (index.html + _app/, what an Immich image keeps in
/build/www). Every GET or HEAD that no API route takes lands here: a file of the build when the
path names one, otherwise index.html (the app routes /photos/<id>, /albums/<id>, /share/<key>... in
the browser, so a reload of any of them must get the page). `/api/...` never falls back: an unknown
API path keeps Immich's JSON 404.

The build ships each text file also as `.br` and `.gz`; those are sent when the client accepts
them, as Immich's static server does, so nothing is compressed per request except the few bytes of
index.html, which is rendered per request (a shared link's page carries its Open Graph tags).
"""

from __future__ import annotations

import gzip
import html
import mimetypes
from functools import lru_cache
from pathlib import Path

from litestar import HttpMethod, Request, route
from litestar.datastructures import ETag
from litestar.exceptions import NotFoundException
from litestar.response.base import ASGIResponse
from litestar.response.file import ASGIFileResponse

from app.api.params import base_url
from app.api.state import Shared
from app.domain import shared_links, system_config

IMMUTABLE = "public, max-age=31536000, immutable"  # hashed file names under /_app/immutable never change
_PRECOMPRESSED = (("br", ".br"), ("gzip", ".gz"))  # preference order
_GZIP_MIN_BYTES = 1024
_TAGS_MARKER = "<!-- metadata:tags -->"

NO_WEB_APP_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Immich-compatible server</title></head>
<body>
<h1>The Immich API is running here</h1>
<p>The Immich mobile app, the CLI and other clients can use this address. The Immich web app is not
installed: set <code>IMMICH_WEB_DIR</code> to a built Immich web app (the directory with
<code>index.html</code> and <code>_app/</code>, found at <code>/build/www</code> in the Immich server
image, or the output of building Immich's <code>web/</code>) and restart the server.</p>
</body></html>
"""


def _accepted_encodings(request: Request) -> set[str]:
    accepted = set()
    for part in request.headers.get("accept-encoding", "").split(","):
        name, _, params = part.partition(";")
        _, has_q, q = params.partition("q=")
        try:
            if not has_q or float(q) > 0:
                accepted.add(name.strip().lower())
        except ValueError:
            continue
    return accepted


def _is_head(request: Request) -> bool:
    return request.method == HttpMethod.HEAD


def _head(status: int, headers: dict[str, str], content_type: str, length: int) -> ASGIResponse:
    """A HEAD answer. Litestar sends no headers of a body on HEAD: these name the body GET would send."""
    return ASGIResponse(status_code=status, headers={**headers, "content-type": content_type,
                                                     "content-length": str(length)}, is_head_response=True)


def _text(request: Request, body: str, media_type: str, *, status: int = 200,
          cache_control: str = "no-store") -> ASGIResponse:
    """A generated text body, gzipped when the client takes it and it is worth it."""
    data = body.encode()
    headers = {"cache-control": cache_control, "vary": "Accept-Encoding"}
    if len(data) >= _GZIP_MIN_BYTES and "gzip" in _accepted_encodings(request):
        data = gzip.compress(data, compresslevel=6)
        headers["content-encoding"] = "gzip"
    if _is_head(request):
        return _head(status, headers, f"{media_type}; charset=utf-8", len(data))
    return ASGIResponse(body=data, status_code=status, media_type=media_type, headers=headers)


def _build_file(root: Path, relative: str) -> Path | None:
    """The file a URL path names inside the build, or None (a directory, a missing file, or anything
    that resolves outside the build: `..`, encoded or not, and symlinks out)."""
    if not relative or relative.endswith("/") or "\\" in relative:
        return None
    try:
        candidate = (root / relative).resolve()
        # is_file raises on a name the file system refuses (too long), where it means "not a file".
        if not candidate.is_relative_to(root) or not candidate.is_file():
            return None
    except (OSError, ValueError):
        return None
    return candidate


def _file(request: Request, path: Path, immutable: bool) -> ASGIResponse:
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    headers = {"cache-control": IMMUTABLE if immutable else "no-cache"}
    send = path
    siblings = [(enc, path.with_name(path.name + ext)) for enc, ext in _PRECOMPRESSED]
    if any(p.is_file() for _, p in siblings):
        headers["vary"] = "Accept-Encoding"
        accepted = _accepted_encodings(request)
        for encoding, sibling in siblings:
            if encoding in accepted and sibling.is_file():
                send, headers["content-encoding"] = sibling, encoding
                break
    # Revalidation (every file but the immutable ones is no-cache) answers 304 while the file is the same.
    stat = send.stat()
    etag = ETag(value=f"{stat.st_mtime_ns:x}-{stat.st_size:x}")
    if etag.to_header() in (t.strip() for t in request.headers.get("if-none-match", "").split(",")):
        return ASGIResponse(status_code=304, headers={**headers, "etag": etag.to_header()})
    if _is_head(request):
        return _head(200, {**headers, "etag": etag.to_header()}, media_type, stat.st_size)
    return ASGIFileResponse(file_path=send, media_type=media_type, headers=headers, etag=etag, stat_result=stat,
                            content_disposition_type="inline", filename=path.name)


@lru_cache(maxsize=4)
def _index(root: Path, mtime_ns: int) -> str:
    return (root / "index.html").read_text(encoding="utf-8")


def _open_graph(preview: shared_links.LinkPreview, origin: str) -> str:
    """Immich's tags for a shared link's page, with every value escaped (a title is user text)."""
    image = (f"{origin}/api/assets/{preview.thumbnail_asset_id}/thumbnail?key={preview.key}"
             if preview.thumbnail_asset_id else f"{origin}/feature-panel.png")
    title, description, image = (html.escape(v, quote=True) for v in (preview.title, preview.description, image))
    return "\n".join([
        f'<meta name="description" content="{description}" />',
        '<meta property="og:type" content="website" />',
        f'<meta property="og:title" content="{title}" />',
        f'<meta property="og:description" content="{description}" />',
        f'<meta property="og:image" content="{image}" />',
        '<meta name="twitter:card" content="summary_large_image" />',
        f'<meta name="twitter:title" content="{title}" />',
        f'<meta name="twitter:description" content="{description}" />',
        f'<meta name="twitter:image" content="{image}" />',
    ])


async def _link_preview(url_path: str) -> shared_links.LinkPreview | None:
    parts = url_path.strip("/").split("/")
    if len(parts) < 2 or not parts[1] or parts[0] not in ("share", "s"):
        return None
    if parts[0] == "share":
        return await shared_links.preview(key=parts[1])
    return await shared_links.preview(slug=parts[1])


async def _origin(request: Request, shared: Shared) -> str:
    """Where unfurlers fetch the thumbnail: the configured external domain (Immich's rule), else
    PUBLIC_URL, else the address the request came to."""
    return system_config.web_address(await system_config.current(), base_url(request, shared.settings.public_url))


async def _index_page(request: Request, shared: Shared, root: Path, url_path: str) -> ASGIResponse:
    index_path = root / "index.html"
    try:
        page = _index(root, index_path.stat().st_mtime_ns)
    except OSError:
        raise NotFoundException("The web app's index.html is missing") from None
    preview = await _link_preview(url_path)
    if preview is not None and _TAGS_MARKER in page:
        page = page.replace(_TAGS_MARKER, _open_graph(preview, await _origin(request, shared)), 1)
    return _text(request, page, "text/html")


@route(["/", "/{web_path:path}"], http_method=[HttpMethod.GET, HttpMethod.HEAD], public=True,
       include_in_schema=False)
async def web_app(request: Request, shared: Shared) -> ASGIResponse:
    url_path = request.scope["path"]
    if url_path == "/api" or url_path.startswith("/api/"):
        raise NotFoundException()  # the JSON 404 of any unknown API path
    root = shared.settings.immich_web_dir
    if root is None or not (root / "index.html").is_file():  # unset, or an empty mount
        return _text(request, NO_WEB_APP_PAGE, "text/html", status=200 if url_path == "/" else 404)
    found = _build_file(root, url_path.lstrip("/"))
    if found is not None and found.name != "index.html":
        # Judged on the file reached, not the URL: /_app/immutable/../version.json is no immutable file.
        return _file(request, found, found.relative_to(root).parts[:2] == ("_app", "immutable"))
    return await _index_page(request, shared, root, url_path)


@route("/custom.css", http_method=[HttpMethod.GET, HttpMethod.HEAD], public=True, include_in_schema=False)
async def custom_css(request: Request) -> ASGIResponse:
    """The administrator's theme CSS (system config `theme.customCss`), which the web app links."""
    config = await system_config.current()
    css = ((config.get("theme") or {}).get("customCss")) or ""
    return _text(request, css, "text/css", cache_control="no-cache")


ROUTES = [web_app, custom_css]
