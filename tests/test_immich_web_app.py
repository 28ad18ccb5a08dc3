"""The Immich web app served on the Immich listener (IMMICH_WEB_DIR): files, the index.html fallback
for the app's own routes, caching and compression, no way out of the build, Open Graph tags on a
shared link's page, /custom.css from the system config, and the plain page without a web app."""

from __future__ import annotations

import gzip
import socket
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, ServerProcess
from tests.media import png_bytes

WEB_BUILD = ROOT.parent / "shared" / "immich-web" / "build"
needs_build = pytest.mark.skipif(not (WEB_BUILD / "index.html").exists(),
                                 reason="the built Immich web app (../shared/immich-web/build) is absent")
IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture(scope="module")
def web(workdir):
    srv = ServerProcess(workdir / "web-app", extra_env={"IMMICH_WEB_DIR": str(WEB_BUILD)}).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def admin(web) -> httpx.Client:
    signed_up = httpx.post(f"{web.immich_url}/api/auth/admin-sign-up",
                           json={"email": "admin@example.com", "password": "admin-password", "name": "Admin"})
    assert signed_up.status_code == 201, signed_up.text
    token = httpx.post(f"{web.immich_url}/api/auth/login",
                       json={"email": "admin@example.com", "password": "admin-password"}).json()["accessToken"]
    with httpx.Client(base_url=web.immich_url, headers={"authorization": f"Bearer {token}"}, timeout=30) as client:
        yield client


def _index_marker() -> str:
    # A line of the real index.html that no other page has: the app's entry script.
    text = (WEB_BUILD / "index.html").read_text()
    return next(line.strip() for line in text.splitlines() if "/_app/immutable/entry/start." in line)


def _immutable_script() -> str:
    return "/" + str(next((WEB_BUILD / "_app" / "immutable" / "entry").glob("start.*.js")).relative_to(WEB_BUILD))


def _raw_get(port: int, target: str, *, head: bool = False) -> tuple[int, bytes]:
    """A request with the path sent exactly as written (clients normalise `..` away): the status and
    the body, or with `head` the response's header block."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    headers, _, body = data.partition(b"\r\n\r\n")
    return int(headers.split()[1]), headers if head else body


@needs_build
def test_files_deep_links_and_the_api_404(web):
    marker = _index_marker()
    with httpx.Client(base_url=web.immich_url, timeout=30) as http:
        root = http.get("/")
        assert root.status_code == 200 and marker in root.text
        assert root.headers["content-type"].startswith("text/html")
        assert root.headers["cache-control"] in ("no-store", "no-cache")
        for deep in ("/photos/5b4a1d6e-0c1e-4a9b-9a55-1f0f3c2a7e10", "/albums/x", "/share/abc", "/s/some-slug",
                     "/admin/system-settings", "/auth/login"):
            page = http.get(deep)
            assert page.status_code == 200 and marker in page.text, deep
        favicon = http.get("/favicon.ico")
        assert favicon.status_code == 200 and favicon.content == (WEB_BUILD / "favicon.ico").read_bytes()
        again = http.get("/favicon.ico", headers={"if-none-match": favicon.headers["etag"]})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == favicon.headers["etag"]
        assert favicon.headers["content-type"] in ("image/vnd.microsoft.icon", "image/x-icon")
        script = http.get(_immutable_script(), headers={"accept-encoding": "identity"})
        assert script.status_code == 200 and script.headers["cache-control"] == IMMUTABLE
        assert script.headers["content-type"].startswith("text/javascript")
        assert script.content == (WEB_BUILD / _immutable_script().lstrip("/")).read_bytes()
        # Unknown API paths keep Immich's JSON answer, whatever the method.
        for method, path in (("GET", "/api/definitely-not-here"), ("GET", "/api"), ("HEAD", "/api/nope/x")):
            missing = http.request(method, path)
            assert missing.status_code == 404, path
            if method == "GET":
                assert missing.json() == {"message": "Not Found"}
        assert http.get("/.well-known/immich").json() == {"api": {"endpoint": "/api"}}
        assert http.get("/api/server/ping").json() == {"res": "pong"}


@needs_build
def test_head_and_compression(web):
    with httpx.Client(base_url=web.immich_url, timeout=30) as http:
        full = http.get("/", headers={"accept-encoding": "identity"})
        head = http.head("/", headers={"accept-encoding": "identity"})
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) == len(full.content)
        assert http.head(_immutable_script()).headers["cache-control"] == IMMUTABLE
        head_file = http.head("/_app/version.json", headers={"accept-encoding": "identity"})
        get_file = http.get("/_app/version.json", headers={"accept-encoding": "identity"})
        assert head_file.headers["content-type"] == get_file.headers["content-type"] == "application/json"
        assert int(head_file.headers["content-length"]) == len(get_file.content) and head_file.content == b""
        # Immutable is said of the file reached, not of the URL's words.
        for dodge in ("/_app/immutable/../version.json", "/_app/immutable/%2e%2e/version.json"):
            status, raw = _raw_get(web.immich_port, dodge, head=True)
            assert status == 200 and b"immutable" not in raw.lower(), dodge
        # index.html gzipped on the fly; the build's own .br/.gz files for the rest.
        zipped = http.get("/photos/x", headers={"accept-encoding": "gzip"})
        assert zipped.headers["content-encoding"] == "gzip" and "accept-encoding" in zipped.headers["vary"].lower()
        assert _index_marker() in zipped.text  # httpx decoded it
        script = _immutable_script()
        raw = httpx.get(f"{web.immich_url}{script}", headers={"accept-encoding": "gzip"})
        assert raw.headers["content-encoding"] == "gzip"
        assert raw.content == (WEB_BUILD / script.lstrip("/")).read_bytes()
        with httpx.stream("GET", f"{web.immich_url}{script}", headers={"accept-encoding": "gzip"}) as s:
            assert gzip.decompress(b"".join(s.iter_raw())) == raw.content  # really gzip on the wire
        brotli = http.get(script, headers={"accept-encoding": "br;q=1, gzip;q=0.5"})
        assert brotli.headers["content-encoding"] == "br"
        refused = http.get(script, headers={"accept-encoding": "br;q=0, gzip;q=0"})
        assert "content-encoding" not in refused.headers


@needs_build
def test_no_path_leaves_the_build(web, tmp_path):
    marker = _index_marker().encode()
    secret = (ROOT / "pyproject.toml").read_bytes()
    for target in ("/../../../../etc/passwd", "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                   "/_app/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/_app/..%2f..%2f..%2f..%2fetc/passwd",
                   "/..%5c..%5c..%5cetc/passwd", "/%2e%2e/pyproject.toml", "/../pyproject.toml",
                   "/_app/../../LICENSE", "//etc/passwd", "/_app/immutable/", "/_app",
                   "/" + "a" * 300, "/_app/" + "a" * 300, "/s/" + "b" * 6000, "/share/" + "c" * 6000):
        status, body = _raw_get(web.immich_port, target)
        # Nothing outside the build is sent: either the app's page or a refusal, never a 500.
        assert status in (200, 400, 404), target
        assert b"root:" not in body and secret not in body, target
        if status == 200:
            assert marker in body, target


@needs_build
def test_a_shared_links_page_carries_its_open_graph_tags(web, admin):
    marker = _index_marker()
    uploaded = admin.post("/api/assets", files={"assetData": ("cabin.png", png_bytes(4101), "image/png")},
                          data={"fileCreatedAt": "2024-02-03T10:00:00Z", "fileModifiedAt": "2024-02-03T10:00:00Z"})
    assert uploaded.status_code == 201, uploaded.text
    photo = uploaded.json()["id"]
    album = admin.post("/api/albums", json={"albumName": "Cabin <2024> & \"friends\"", "assetIds": [photo]}).json()
    link = admin.post("/api/shared-links", json={"type": "ALBUM", "albumId": album["id"], "slug": "cabin"}).json()
    page = httpx.get(f"{web.immich_url}/share/{link['key']}").text
    assert marker in page
    assert '<meta property="og:title" content="Cabin &lt;2024&gt; &amp; &quot;friends&quot;" />' in page
    assert '<meta property="og:description" content="1 shared photos &amp; videos" />' in page
    image = f'{web.immich_url}/api/assets/{photo}/thumbnail?key={link["key"]}'
    assert f'<meta property="og:image" content="{image}" />' in page
    assert '<meta name="twitter:card" content="summary_large_image" />' in page
    assert "og:title" in httpx.get(f"{web.immich_url}/s/cabin").text
    # The thumbnail URL the tags name really opens with the key.
    assert httpx.get(image).status_code == 200

    individual = admin.post("/api/shared-links", json={"type": "INDIVIDUAL", "assetIds": [photo],
                                                        "description": "For you"}).json()
    page = httpx.get(f"{web.immich_url}/share/{individual['key']}").text
    assert '<meta property="og:title" content="Public Share" />' in page
    assert '<meta property="og:description" content="For you" />' in page

    guarded = admin.post("/api/shared-links", json={"type": "ALBUM", "albumId": album["id"],
                                                     "password": "secret"}).json()
    for path in (f"/share/{guarded['key']}", "/share/" + "A" * 67, "/share/not-base64!", "/s/nobody"):
        plain = httpx.get(f"{web.immich_url}{path}")
        assert plain.status_code == 200 and marker in plain.text and "og:title" not in plain.text, path


@needs_build
def test_custom_css_follows_the_system_config(web, admin):
    css = httpx.get(f"{web.immich_url}/custom.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css") and css.text == ""
    config = admin.get("/api/system-config").json()
    config["theme"]["customCss"] = "body { background: #123456; }"
    assert admin.put("/api/system-config", json=config).status_code == 200
    css = httpx.get(f"{web.immich_url}/custom.css")
    assert css.status_code == 200 and css.text == "body { background: #123456; }"


def test_without_a_web_app_the_root_says_how_to_add_one(server):
    page = httpx.get(f"{server.immich_url}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "IMMICH_WEB_DIR" in page.text and "/build/www" in page.text
    deep = httpx.get(f"{server.immich_url}/photos/x")
    assert deep.status_code == 404 and "IMMICH_WEB_DIR" in deep.text
    assert httpx.get(f"{server.immich_url}/api/nope").json() == {"message": "Not Found"}
    css = httpx.get(f"{server.immich_url}/custom.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def _in_process(web_dir: Path):
    import msgspec
    from litestar.testing import TestClient

    from app.api.state import Shared
    from app.settings import load_settings
    from compat.app import create_immich_app

    settings = msgspec.structs.replace(load_settings(), immich_web_dir=web_dir)
    return TestClient(create_immich_app(Shared.build(settings)))


def test_an_empty_web_dir_and_a_symlink_out_of_the_build(tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("not for the web")
    empty = tmp_path / "empty"
    empty.mkdir()
    with _in_process(empty) as client:  # a compose mount left empty: the how-to page, not a JSON 404
        page = client.get("/")
        assert page.status_code == 200 and "IMMICH_WEB_DIR" in page.text
    build = tmp_path / "build"
    (build / "_app").mkdir(parents=True)
    (build / "index.html").write_text("<html><head><!-- metadata:tags --></head><body>app</body></html>")
    (build / "_app" / "leak.txt").symlink_to(outside)
    (build / "_app" / "up").symlink_to(tmp_path)
    with _in_process(build) as client:
        for path in ("/_app/leak.txt", "/_app/up/secret.txt", "/_app/up/empty"):
            got = client.get(path)
            assert "not for the web" not in got.text and got.text.endswith("app</body></html>"), path
        assert client.get("/index.html").headers["cache-control"] == "no-store"
