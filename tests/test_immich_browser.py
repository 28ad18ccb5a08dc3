"""The real Immich 3.1 web app (../shared/immich-web/build) served by this server (IMMICH_WEB_DIR),
driven in Chromium by Playwright through what a new user does: sign-up and the onboarding wizard,
upload, timeline, viewer, albums, favorites and trash, people, map, explore, search,
administration, account settings and sign-out.

Every step runs even when an earlier one failed (each starts from a URL), gets a screenshot under the
test's temp dir, and is printed with OK or what went wrong: each `/api` response >= 400 the step did
not expect (method, path, status, body) and each error toast the app showed. The test fails listing
them all.

Chromium is Debian's (`/usr/bin/chromium`, installed by .ci/run); Playwright's own browser download
needs the internet. The map's style lives on tiles.immich.cloud, out of reach here: the browser gets
a one-layer style in its place, so the map (and its markers) still draws from this server's data.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import ROOT, ServerProcess

WEB_BUILD = ROOT.parent / "shared" / "immich-web" / "build"
ASSETS = ROOT.parent / "shared" / "test-assets"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PHOTOS = ["metadata/dates/time-created.jpg", "metadata/dates/datetimeoriginal-gps.jpg",
          "metadata/dates/gps-datetime.jpg", "metadata/dates/date-priority-test.jpg", "metadata/tags/picasa.jpg",
          "formats/jpg/el_torcal_rocks.jpg", "metadata/faces/portrait.jpg", "formats/heic/IMG_2682.heic",
          "formats/webp/denali.webp", "formats/png/density_plot.png"]
EMAIL, PASSWORD, NAME = "admin@example.com", "a long admin password", "Admin"
WELCOME = "Hello from the browser test"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]
MAP_STYLE = {"version": 8, "sources": {}, "layers": [{"id": "land", "type": "background",
                                                       "paint": {"background-color": "#dde3e8"}}]}
# An error toast of @immich/ui: a danger-coloured card in the toast stack.
TOAST_WATCH = """
(() => {
  const seen = new WeakSet();
  const check = () => document.querySelectorAll('div[class*="bg-danger-50"]').forEach((el) => {
    if (seen.has(el)) return;
    seen.add(el);
    window.__reportToast((el.innerText || '').replace(/\\s+/g, ' ').trim());
  });
  new MutationObserver(check).observe(document.documentElement, {childList: true, subtree: true});
})();
"""

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (the `test` extra) is not installed")
pytestmark = [
    pytest.mark.skipif(not (WEB_BUILD / "index.html").exists(),
                       reason="the built Immich web app (../shared/immich-web/build) is absent"),
    pytest.mark.skipif(not all((ASSETS / p).exists() for p in PHOTOS), reason="../shared/test-assets is absent"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason="no chromium at /usr/bin/chromium (.ci/run installs Debian's package with apt-get)"),
]


@dataclass
class Step:
    number: int
    name: str
    expected: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path regex, status)
    api_errors: list[str] = field(default_factory=list)
    toasts: list[str] = field(default_factory=list)
    failure: str | None = None

    def expects(self, method: str, path: str, status: int) -> bool:
        return any(m == method and re.fullmatch(p, path) and s == status for m, p, s in self.expected)

    @property
    def problems(self) -> list[str]:
        return ([f"failed: {self.failure}"] if self.failure else []) + \
            [f"API {e}" for e in self.api_errors] + [f"error toast: {t}" for t in self.toasts]


class Flow:
    """One browser page on the server, with what each step saw."""

    def __init__(self, page, base: str, shots: Path):
        self.page, self.base, self.shots = page, base, shots
        self.steps: list[Step] = []
        self.current: Step | None = None
        self.uploaded: dict[str, str] = {}  # original file name -> asset id
        self.broken_during_upload: set[str] = set()
        page.expose_function("__reportToast", self._toast)
        page.add_init_script(TOAST_WATCH)
        page.on("response", self._response)

    def _toast(self, text: str) -> None:
        if self.current is not None:
            self.current.toasts.append(text)

    def _response(self, response) -> None:
        url = urlsplit(response.url)
        if self.current is None or not url.path.startswith("/api/") or response.status < 400:
            return
        method = response.request.method
        if self.current.expects(method, url.path, response.status):
            return
        try:
            body = response.text()[:200]
        except Exception:  # the body can be gone once the page navigated on
            body = "(body unavailable)"
        self.current.api_errors.append(f"{method} {url.path} -> {response.status} {body}")

    def url(self, path: str) -> str:
        return self.base + path

    def goto(self, path: str) -> None:
        self.page.goto(self.url(path))

    def api(self) -> httpx.Client:
        """The signed-in session's own cookie, for checks the page has no element for."""
        token = next(c["value"] for c in self.page.context.cookies() if c["name"] == "immich_access_token")
        return httpx.Client(base_url=self.base, cookies={"immich_access_token": token}, timeout=30)

    def run(self, number: int, name: str, action, expected=()) -> None:
        step = Step(number, name, list(expected))
        self.steps.append(step)
        self.current = step
        started = time.monotonic()
        try:
            action(self)
            self.page.wait_for_timeout(300)  # a last response or toast of the step
        except Exception as exc:  # a step that fails still lets the next ones run and report
            lines = str(exc).splitlines() or [""]
            waited = next((ln.strip() for ln in lines if "waiting for" in ln), "")  # Playwright's call log
            step.failure = f"{type(exc).__name__}: {lines[0][:300]}" + (f" ({waited[:200]})" if waited else "")
        finally:
            self.current = None
            try:
                self.page.screenshot(path=str(self.shots / f"{number:02d}-{re.sub(r'[^a-z0-9]+', '-', name.lower())}.png"))
            except Exception:
                pass
        verdict = "OK" if not step.problems else "; ".join(step.problems)
        print(f"step {number} {name} ({time.monotonic() - started:.1f}s): {verdict}", flush=True)


# --- the steps ------------------------------------------------------------------------------------


def sign_up_and_onboard(flow: Flow) -> None:
    page = flow.page
    flow.goto("/")
    page.get_by_role("link", name="Getting Started").click()
    page.wait_for_url("**/auth/register")
    fields = page.locator("form input")
    for i, value in enumerate((EMAIL, PASSWORD, PASSWORD, NAME)):
        fields.nth(i).fill(value)
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/auth/login**")
    page.locator("input#email").fill(EMAIL)
    page.locator("input#password").fill(PASSWORD)
    page.get_by_role("button", name="Login").click()
    page.wait_for_url("**/auth/onboarding**")
    # Each wizard page's last button goes on (Theme, Language, ..., Done), until the timeline.
    for _ in range(12):
        if "/auth/onboarding" not in page.url:
            break
        before = page.url
        page.locator("main button:visible, button:visible").last.click()
        page.wait_for_url(lambda u: u != before, timeout=15000)
    page.wait_for_url("**/photos")
    page.get_by_role("button", name="Upload").first.wait_for()
    # The sidebar's server version comes with the socket's on_server_version event on connect.
    try:
        page.get_by_text(re.compile(r"^v3\.1\.\d+$")).first.wait_for(timeout=10000)
    except sync_api.TimeoutError:
        raise AssertionError("the sidebar shows the server version as "
                             f"{page.locator('text=Unknown').count() and 'Unknown' or 'nothing'} "
                             "(no on_server_version event on the socket)") from None


def upload(flow: Flow) -> None:
    page = flow.page
    if "/photos" not in page.url:
        flow.goto("/photos")
    done: dict[str, str] = {}

    def uploaded(response):
        if urlsplit(response.url).path == "/api/assets" and response.request.method == "POST" \
                and response.status in (200, 201):
            done[str(len(done))] = response.json()["id"]

    page.on("response", uploaded)
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Upload").first.click()
    chooser.value.set_files([str(ASSETS / p) for p in PHOTOS])
    deadline = time.monotonic() + 90
    while len(done) < len(PHOTOS) and time.monotonic() < deadline:
        _note_broken_tiles(flow)
        page.wait_for_timeout(200)
    page.remove_listener("response", uploaded)
    assert len(done) == len(PHOTOS), f"{len(done)} of {len(PHOTOS)} uploads answered"
    # Until every thumbnail exists (the server's jobs), keep looking for broken tiles on the page.
    with flow.api() as api:
        pending = set(done.values())
        while pending and time.monotonic() < deadline:
            _note_broken_tiles(flow)
            pending = {a for a in pending if api.get(f"/api/assets/{a}/thumbnail").status_code != 200}
            page.wait_for_timeout(300)
        assert not pending, f"{len(pending)} thumbnails still missing after 90 s"
        for item in api.post("/api/search/metadata", json={"size": 100}).json()["assets"]["items"]:
            flow.uploaded[item["originalFileName"]] = item["id"]
    page.wait_for_timeout(1000)
    _note_broken_tiles(flow)


def _note_broken_tiles(flow: Flow) -> None:
    # One look at the page (tiles come and go while it renders the upload).
    flow.broken_during_upload.update(flow.page.evaluate(
        "() => [...document.querySelectorAll('[data-asset-id]:has([data-broken-asset])')].map(t => t.dataset.assetId)"))


def timeline(flow: Flow) -> None:
    page = flow.page
    broken_live = sorted(flow.broken_during_upload)
    page.set_viewport_size({"width": 1280, "height": 3200})  # every month of the ten photos on one screen
    try:
        flow.goto("/photos")
        tiles = page.locator("[data-asset-id]")
        page.wait_for_function("n => document.querySelectorAll('[data-asset-id] img').length >= n", arg=len(PHOTOS))
        page.wait_for_function("""() => [...document.querySelectorAll('[data-asset-id] img')]
                                        .every(img => img.complete && img.naturalWidth > 0)""")
        assert tiles.count() == len(PHOTOS), f"{tiles.count()} tiles for {len(PHOTOS)} photos"
        broken = page.locator("[data-broken-asset]").count()
        assert broken == 0, f"{broken} tiles show 'Error loading image' after a reload"
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})
    assert not broken_live, (f"{len(broken_live)} tiles showed 'Error loading image' while the upload ran "
                             "(the page was told of an upload before its thumbnail existed)")


def viewer_and_info(flow: Flow) -> None:
    page = flow.page
    asset = flow.uploaded["IMG_2682.heic"]
    flow.goto("/photos")
    page.locator(f'[data-asset-id="{asset}"]').click()
    page.wait_for_url(f"**/photos/{asset}")
    page.get_by_role("button", name="Info").click()
    page.get_by_text("Apple iPhone 7").first.wait_for()  # EXIF: camera, exposure, place
    page.get_by_text("ƒ/1.8").first.wait_for()
    page.get_by_text("Ralston").first.wait_for()
    page.locator(".maplibregl-map canvas").first.wait_for()
    page.keyboard.press("Escape")


def album(flow: Flow) -> None:
    page = flow.page
    flow.goto("/albums")
    page.get_by_role("button", name="Create album").click()
    page.wait_for_url(re.compile(r".*/albums/[0-9a-f-]{36}.*"))
    album_id = re.search(r"/albums/([0-9a-f-]{36})", page.url).group(1)
    # The new album has no name yet: its title field (saved when it loses focus), then its photos.
    title = page.get_by_title("Edit title")
    title.fill("Browser trip")
    with page.expect_response(lambda r: urlsplit(r.url).path == f"/api/albums/{album_id}"
                              and r.request.method == "PATCH"):
        title.blur()
    page.get_by_role("button", name="Select photos").click()
    wanted = [flow.uploaded["portrait.jpg"], flow.uploaded["density_plot.png"]]  # at the top: dated today
    for asset in wanted:
        page.locator(f'[data-asset-id="{asset}"]').click()
    page.get_by_role("button", name="Add assets").click()
    page.wait_for_function("n => document.querySelectorAll('[data-asset-id]').length === n", arg=len(wanted))
    with flow.api() as api:
        got = api.get(f"/api/albums/{album_id}").json()
    assert (got["albumName"], got["assetCount"]) == ("Browser trip", 2), got
    flow.goto("/albums")
    page.locator(f'a[href="/albums/{album_id}"]').first.wait_for()


def favorite_trash_restore(flow: Flow) -> None:
    page = flow.page
    asset = flow.uploaded["denali.webp"]
    flow.goto(f"/photos/{asset}")
    # The viewer's own requests answered first: one still on its way (the asset as read before the
    # click) would paint the heart back as it was, the web app's race whatever the server.
    page.wait_for_load_state("networkidle")
    with page.expect_response(lambda r: urlsplit(r.url).path == f"/api/assets/{asset}"
                              and r.request.method == "PUT") as favorited:
        page.get_by_role("button", name="Favorite", exact=True).click()
    assert favorited.value.json()["isFavorite"] is True
    page.get_by_role("button", name="Unfavorite", exact=True).wait_for()
    flow.goto("/favorites")
    page.locator(f'[data-asset-id="{asset}"]').wait_for()
    flow.goto(f"/photos/{asset}")
    page.get_by_role("button", name="Delete").click()
    with flow.api() as api:
        _wait(lambda: api.get(f"/api/assets/{asset}").json().get("isTrashed") is True, "the photo in the trash")
    flow.goto("/trash")
    page.locator(f'[data-asset-id="{asset}"]').wait_for()
    page.get_by_role("button", name="Restore all").click()
    confirm = page.get_by_role("button", name=re.compile("^(Confirm|Restore)"))
    if confirm.count():
        confirm.last.click()
    with flow.api() as api:
        _wait(lambda: api.get(f"/api/assets/{asset}").json().get("isTrashed") is False, "the photo restored")
    flow.goto("/trash")
    page.wait_for_function("() => !document.querySelector('[data-asset]')")


def people_map_explore_search(flow: Flow) -> None:
    page = flow.page
    flow.goto("/people")
    page.locator("main").first.wait_for()
    flow.goto("/map")
    page.locator(".maplibregl-map canvas").first.wait_for()
    page.locator(".maplibregl-marker").first.wait_for()  # the photos with GPS
    flow.goto("/explore")
    page.locator("main").first.wait_for()
    # Search as a user does, through the search options: a file name, a city, a tag.
    _search(flow, lambda dialog: (dialog.get_by_label("File name or extension").check(),
                                  dialog.locator("input[type=text]").first.fill("picasa")))
    _only(page, flow.uploaded["picasa.jpg"])
    _search(flow, lambda dialog: _pick(page, dialog.get_by_label("City"), "San Francisco"))
    _only(page, flow.uploaded["gps-datetime.jpg"])
    # Tags are a feature each user switches on (Account settings > Features > Tags) before the
    # search options offer them.
    flow.goto("/user-settings?isOpen=feature")
    page.get_by_role("button", name=re.compile("^Tags")).click()
    page.get_by_role("switch", name="Enable").click()
    with page.expect_response(lambda r: urlsplit(r.url).path == "/api/users/me/preferences"
                              and r.request.method == "PUT"):
        page.get_by_role("button", name="Save").click()
    _search(flow, lambda dialog: _pick(page, dialog.get_by_label("Tags"), "Frost"))
    _only(page, flow.uploaded["picasa.jpg"])


def _search(flow: Flow, fill) -> None:
    page = flow.page
    flow.goto("/photos")
    page.get_by_role("button", name="Show search options").click()
    dialog = page.get_by_role("dialog")
    fill(dialog)
    dialog.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_url("**/search?**")


def _pick(page, combobox, value: str) -> None:
    combobox.click()
    combobox.fill(value[:4])
    page.get_by_role("option", name=value, exact=True).click()


def _only(page, asset: str) -> None:
    page.locator(f'#search-content [data-asset="{asset}"]').wait_for()
    count = page.locator("#search-content [data-asset]").count()
    assert count == 1, f"{count} results where one was wanted"


def administration(flow: Flow) -> None:
    page = flow.page
    flow.goto("/admin/users")
    page.get_by_text(EMAIL).first.wait_for()
    flow.goto("/admin/system-settings")
    page.get_by_role("button", name="Server Settings").click()
    page.get_by_label("Welcome message").fill(WELCOME)
    with page.expect_response(lambda r: urlsplit(r.url).path == "/api/system-config" and r.request.method == "PUT"):
        page.get_by_role("button", name="Save").first.click()  # the open section's (closed ones render none)
    page.reload()
    page.get_by_role("button", name="Server Settings").click()
    assert page.get_by_label("Welcome message").input_value() == WELCOME
    flow.goto("/admin/queues")
    page.get_by_role("button", name="Create job").wait_for()
    flow.goto("/admin/server-status")
    page.get_by_text("User usage detail").wait_for()
    page.get_by_role("cell", name=NAME, exact=True).or_(page.get_by_text(NAME, exact=True)).first.wait_for()


def account_and_sign_out(flow: Flow) -> None:
    page = flow.page
    flow.goto("/user-settings")
    page.get_by_role("button", name=re.compile("^Account")).first.click()
    email = page.get_by_label("Email", exact=True)
    email.wait_for()
    assert email.input_value() == EMAIL
    flow.goto("/photos")
    page.locator(f"button[title*='{EMAIL}']").click()  # the avatar's account menu
    page.get_by_role("link", name="Sign Out").click()
    page.wait_for_url("**/auth/login**")
    page.get_by_text(WELCOME).wait_for()  # the administration step's setting, applied


def _wait(check, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


STEPS = [
    # Before anyone signed in, the app asks who is signed in: 401 is the answer it expects.
    ("welcome, admin sign-up, onboarding wizard", sign_up_and_onboard, [("GET", "/api/users/me", 401)]),
    ("upload 10 photos with the file chooser", upload, []),
    ("timeline: every thumbnail, none broken during or after the upload", timeline, []),
    ("viewer, info panel with EXIF and map", viewer_and_info, []),
    ("create an album from the Albums page and add photos", album, []),
    ("favorite, trash, restore", favorite_trash_restore, []),
    ("people, map with markers, explore, search by file name, city and tag", people_map_explore_search, []),
    ("administration: users, settings (changed and applied), job queues, server stats", administration, []),
    ("account settings, sign out", account_and_sign_out, []),
]


def test_the_immich_web_app_in_a_real_browser(workdir, tmp_path):
    server = ServerProcess(workdir / "browser", extra_env={"IMMICH_WEB_DIR": str(WEB_BUILD)}).start()
    shots = tmp_path / "screenshots"
    shots.mkdir()
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.set_default_timeout(20000)
            context.route("https://tiles.immich.cloud/**", lambda route: route.fulfill(json=MAP_STYLE)
                          if route.request.url.endswith(".json") else route.fulfill(status=404))
            flow = Flow(context.new_page(), server.immich_url, shots)
            for number, (name, action, expected) in enumerate(STEPS, start=1):
                flow.run(number, name, action, expected)
            browser.close()
    finally:
        server.stop()
    print(f"screenshots: {shots}")
    failed = [s for s in flow.steps if s.problems]
    assert not failed, "\n".join(f"step {s.number} {s.name}:\n  " + "\n  ".join(s.problems) for s in failed)
