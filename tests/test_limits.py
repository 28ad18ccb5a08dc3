"""Login throttling and upload limits, each against a server of its own with short windows and
small caps (so no counters or caps leak into other tests). Second client addresses come from
binding the client socket to other loopback addresses (127.0.0.x), never from forwarded headers."""

from __future__ import annotations

import select
import socket
import time
import uuid

import httpx
import pytest

from tests.conftest import ServerProcess
from tests.media import png_bytes

WINDOW = 15
FIELDS = {"fileCreatedAt": "2024-01-02T03:04:05.000Z", "fileModifiedAt": "2024-01-02T03:04:05.000Z"}
MAX_UPLOAD = 4 << 20
IDLE_TIMEOUT = 2


def _client(base: str, address: str = "127.0.0.1") -> httpx.Client:
    return httpx.Client(base_url=base, transport=httpx.HTTPTransport(local_address=address), timeout=30)


def _login(base: str, email: str, password: str, address: str) -> httpx.Response:
    with _client(base, address) as http:
        return http.post("/api/auth/login", json={"email": email, "password": password})


def _user(srv: ServerProcess, password: str = "right-password", admin: bool = False) -> tuple[str, str]:
    """A user made with the admin CLI; returns (email, API key)."""
    email = f"limits-{uuid.uuid4().hex[:8]}@example.com"
    made = srv.cli("admin", "create-user", "--email", email, "--password", password, *(["--admin"] if admin else []))
    assert made.returncode == 0, made.stderr
    key = srv.cli("admin", "create-api-key", "--email", email, "--name", "tests")
    assert key.returncode == 0, key.stderr
    return email, key.stdout.strip()


@pytest.fixture(scope="module")
def login_server(workdir):
    srv = ServerProcess(workdir / "limits-login", extra_env={
        "LOGIN_WINDOW_SECONDS": str(WINDOW), "LOGIN_MAX_FAILURES": "5",
        "LOGIN_MAX_FAILURES_PER_ADDRESS": "10", "LOGIN_MAX_FAILURES_PER_ACCOUNT": "8",
    }).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def upload_server(workdir):
    srv = ServerProcess(workdir / "limits-upload", extra_env={
        "MAX_UPLOAD_BYTES": str(MAX_UPLOAD), "UPLOAD_IDLE_TIMEOUT_SECONDS": str(IDLE_TIMEOUT),
    }).start()
    yield srv
    srv.stop()


# --- login throttling -------------------------------------------------------------------------

def test_a_hundred_wrong_passwords_get_429_then_the_window_passes(login_server):
    base = login_server.immich_url
    email, _ = _user(login_server)
    started = time.monotonic()
    with _client(base) as http:
        answers = [http.post("/api/auth/login", json={"email": email, "password": f"guess-{i}"}) for i in range(100)]
    elapsed = time.monotonic() - started
    statuses = [r.status_code for r in answers]
    assert set(statuses) == {401, 429}
    assert statuses[:6] == [401] * 5 + [429], statuses
    # Five guesses per window (a slow machine may see the window roll over during the attack).
    assert statuses.count(401) <= 5 * (1 + int(elapsed // WINDOW)), (statuses, elapsed)
    refused = answers[-1]
    assert refused.json()["message"].startswith("Too many failed sign-in attempts")
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= WINDOW
    assert refused.headers["x-correlation-id"]

    # While the attack goes on, the right password from another address works...
    assert _login(base, email, "right-password", "127.0.0.2").status_code == 201
    # ...and from the attacking address it waits like every other attempt from there.
    locked = _login(base, email, "right-password", "127.0.0.1")
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) <= WINDOW

    time.sleep(int(locked.headers["retry-after"]) + 0.5)
    assert _login(base, email, "right-password", "127.0.0.1").status_code == 201


def test_an_account_wide_attack_only_stops_addresses_that_failed(login_server):
    base = login_server.immich_url
    email, _ = _user(login_server)
    # Four addresses fail twice each: 8 failures on the account, none of them over its own pair limit.
    for n in range(3, 7):
        for _ in range(2):
            assert _login(base, email, "wrong", f"127.0.0.{n}").status_code == 401
    # An address that failed on the account now waits, even with the right password...
    held = _login(base, email, "right-password", "127.0.0.3")
    assert held.status_code == 429 and "retry-after" in held.headers
    # ...a fresh address gets one try, then waits too...
    assert _login(base, email, "wrong", "127.0.0.7").status_code == 401
    assert _login(base, email, "wrong", "127.0.0.7").status_code == 429
    # ...and an address that never failed signs in.
    assert _login(base, email, "right-password", "127.0.0.8").status_code == 201


def test_one_address_trying_many_accounts_is_stopped(login_server):
    base = login_server.immich_url
    email, _ = _user(login_server)
    with _client(base, "127.0.0.9") as http:
        statuses = [http.post("/api/auth/login", json={"email": f"nobody-{i}@example.com", "password": "guess"})
                    .status_code for i in range(12)]
    assert statuses == [401] * 10 + [429] * 2
    # That address now waits for every account; the same account from elsewhere is unaffected.
    assert _login(base, email, "right-password", "127.0.0.9").status_code == 429
    assert _login(base, email, "right-password", "127.0.0.10").status_code == 201


def test_a_success_clears_its_own_failures(login_server):
    base = login_server.immich_url
    email, _ = _user(login_server)
    for _ in range(4):
        assert _login(base, email, "wrong", "127.0.0.11").status_code == 401
    assert _login(base, email, "right-password", "127.0.0.11").status_code == 201
    for _ in range(4):
        assert _login(base, email, "wrong", "127.0.0.11").status_code == 401


def test_parallel_guesses_cannot_slip_past_the_limit(login_server):
    """Attempts are counted before the (slow) password check, so a burst gets no more than the limit."""
    from concurrent.futures import ThreadPoolExecutor

    base = login_server.immich_url
    email, _ = _user(login_server)
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(lambda i: _login(base, email, f"burst-{i}", "127.0.0.12").status_code, range(20)))
    assert sorted(statuses) == [401] * 5 + [429] * 15


def test_ipv6_clients_are_counted_per_64_and_mapped_ipv4_as_ipv4():
    from app.domain.login_throttle import client_key

    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:192.0.2.7") == client_key("192.0.2.7") == "192.0.2.7"


# --- uploads ----------------------------------------------------------------------------------

def _multipart(boundary: str, fields: dict[str, str], file_field: str, payload: bytes) -> tuple[bytes, bytes]:
    """(everything before the file's bytes, everything after) of a multipart body."""
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()
    )
    head += (f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="big.png"\r\n'
             f"Content-Type: image/png\r\n\r\n").encode()
    return head, f"\r\n--{boundary}--\r\n".encode()


LISTENERS = {
    # listener: (url attribute, auth header, file field, extra fields)
    "native": ("base_url", "Authorization: Bearer {key}", "asset_data",
               {"device_asset_id": "big", "device_id": "tests", "file_created_at": FIELDS["fileCreatedAt"],
                "file_modified_at": FIELDS["fileModifiedAt"]}),
    "immich": ("immich_url", "x-api-key: {key}", "assetData", FIELDS),
}


def _port(srv: ServerProcess, listener: str) -> int:
    return int(getattr(srv, LISTENERS[listener][0]).rsplit(":", 1)[1])


def _request_head(srv: ServerProcess, listener: str, key: str, boundary: str, length: str | None) -> bytes:
    auth = LISTENERS[listener][1].format(key=key)
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (f"POST /api/assets HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n{framing}\r\n\r\n").encode()


def _read_response(sock: socket.socket, timeout: float) -> tuple[int, dict[str, str], bytes, bool]:
    """Read until the server closes; returns (status, headers, body, closed by the server)."""
    data = b""
    deadline = time.monotonic() + timeout
    closed = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines and lines[0].startswith("HTTP/1.1 "), data[:200]
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body, closed


def _send_until_answered(sock: socket.socket, pieces, pause: float = 0.01) -> int:
    """Send pieces one by one, stopping once the server answers; returns the bytes sent."""
    sent = 0
    for piece in pieces:
        if select.select([sock], [], [], pause)[0]:
            break
        try:
            sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(piece)
    return sent


def _tmp_files(srv: ServerProcess) -> list:
    tmp = srv.data_dir / "tmp"
    return sorted(tmp.iterdir()) if tmp.exists() else []


@pytest.fixture(scope="module")
def uploader(upload_server):
    return _user(upload_server)[1]


def test_uploads_under_the_limits_still_work(upload_server, uploader):
    with httpx.Client(base_url=upload_server.immich_url, headers={"x-api-key": uploader}, timeout=30) as http:
        r = http.post("/api/assets", files={"assetData": ("ok.png", png_bytes(901), "image/png")}, data=FIELDS)
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("listener", ["native", "immich"])
def test_a_declared_10_tb_body_is_refused_before_it_is_sent(upload_server, uploader, listener):
    with socket.create_connection(("127.0.0.1", _port(upload_server, listener)), timeout=10) as sock:
        sock.sendall(_request_head(upload_server, listener, uploader, "b0undary", str(10 << 40)))
        status, headers, body, closed = _read_response(sock, timeout=10)
    assert status == 413, body
    assert headers.get("connection") == "close" and closed
    expected = "The upload is larger than this server accepts (4194304 bytes)"
    assert body.decode() == ('{"detail":"%s"}' % expected if listener == "native" else '{"message":"%s"}' % expected)
    assert _tmp_files(upload_server) == []


@pytest.mark.parametrize("listener", ["native", "immich"])
def test_a_chunked_body_over_the_limit_is_cut_off_and_its_temp_file_removed(upload_server, uploader, listener):
    boundary = "chunky"
    head, tail = _multipart(boundary, LISTENERS[listener][3], LISTENERS[listener][2], b"")
    piece = b"\0" * 65536
    total = 2 * MAX_UPLOAD
    chunks = [b"%x\r\n%s\r\n" % (len(head), head)]
    chunks += [b"%x\r\n%s\r\n" % (len(piece), piece)] * (total // len(piece))
    chunks += [b"%x\r\n%s\r\n0\r\n\r\n" % (len(tail), tail)]
    with socket.create_connection(("127.0.0.1", _port(upload_server, listener)), timeout=10) as sock:
        sock.sendall(_request_head(upload_server, listener, uploader, boundary, None))
        sent = _send_until_answered(sock, chunks)
        status, headers, body, closed = _read_response(sock, timeout=10)
    assert status == 413, body
    assert sent < total and closed
    assert _tmp_files(upload_server) == []


@pytest.mark.parametrize("listener", ["native", "immich"])
def test_a_file_over_the_quota_is_stopped_while_streaming(upload_server, listener):
    quota = 1 << 20
    email, key = _user(upload_server)
    _, admin_key = _user(upload_server, admin=True)
    with httpx.Client(base_url=upload_server.immich_url, timeout=30) as http:
        me = http.get("/api/users/me", headers={"x-api-key": key}).json()
        r = http.put(f"/api/admin/users/{me['id']}", json={"quotaSizeInBytes": quota}, headers={"x-api-key": admin_key})
        assert r.status_code == 200, r.text

    boundary = "quota"
    size = 3 << 20  # under MAX_UPLOAD_BYTES, three times the quota
    head, tail = _multipart(boundary, LISTENERS[listener][3], LISTENERS[listener][2], b"")
    piece = b"\1" * 65536
    pieces = [head] + [piece] * (size // len(piece)) + [tail]
    length = len(head) + size + len(tail)
    with socket.create_connection(("127.0.0.1", _port(upload_server, listener)), timeout=10) as sock:
        sock.sendall(_request_head(upload_server, listener, key, boundary, str(length)))
        sent = _send_until_answered(sock, pieces)
        status, headers, body, closed = _read_response(sock, timeout=10)
    assert sent < length, "the server let the whole body in"
    if listener == "native":
        assert (status, body) == (507, b'{"detail":"User storage limit exceeded"}')
    else:
        assert (status, body) == (400, b'{"message":"Quota has been exceeded!"}')
    assert closed
    assert _tmp_files(upload_server) == []


@pytest.mark.parametrize("listener", ["native", "immich"])
def test_a_stalled_upload_is_ended_and_its_temp_file_removed(upload_server, uploader, listener):
    boundary = "stall"
    size = 1 << 20
    head, tail = _multipart(boundary, LISTENERS[listener][3], LISTENERS[listener][2], b"")
    length = len(head) + size + len(tail)
    with socket.create_connection(("127.0.0.1", _port(upload_server, listener)), timeout=10) as sock:
        sock.sendall(_request_head(upload_server, listener, uploader, boundary, str(length)))
        sock.sendall(head + b"\2" * (size // 2))
        # The server has a temp file for the half-received upload...
        deadline = time.monotonic() + 5
        while not _tmp_files(upload_server) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _tmp_files(upload_server), "the upload never reached a temp file"
        started = time.monotonic()
        status, headers, body, closed = _read_response(sock, timeout=IDLE_TIMEOUT + 10)
        waited = time.monotonic() - started
    # ...and ends it within the idle timeout plus slack, closing the connection.
    assert status == 408, body
    assert closed and waited < IDLE_TIMEOUT + 5
    assert _tmp_files(upload_server) == []


def test_a_stalled_search_image_is_ended_too(upload_server, uploader):
    boundary = "search"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="q.png"\r\n'
            "Content-Type: image/png\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", _port(upload_server, "native")), timeout=10) as sock:
        sock.sendall(f"POST /api/search HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {uploader}\r\n"
                     f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {1 << 20}\r\n\r\n"
                     .encode() + head + b"\3" * 4096)
        status, _, body, _ = _read_response(sock, timeout=IDLE_TIMEOUT + 10)
    assert status == 408, body
    assert _tmp_files(upload_server) == []


def test_a_library_cap_stops_the_native_stream_and_an_unnamed_library_gets_the_widest_bound(server, account):
    """On the shared server (its database is reachable from here); the account and its libraries are new."""
    from app.db import engine as db
    from app.api import ids
    from tests.conftest import run

    capped = account.client.libraries.create(name="capped").id
    roomy = account.client.libraries.create(name="roomy").id
    run(db.execute("UPDATE libraries SET storage_limit_bytes = $2 WHERE id = $1",
                   ids.decode(ids.LIBRARY, capped), 1 << 20))
    fields = dict(LISTENERS["native"][3])
    size = 3 << 20
    port = int(server.base_url.rsplit(":", 1)[1])

    # library_id before the file: the capped library's bound applies while streaming.
    head, tail = _multipart("lib", {**fields, "library_id": capped}, "asset_data", b"")
    length = len(head) + size + len(tail)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(_request_head(server, "native", account.api_key, "lib", str(length)))
        sent = _send_until_answered(sock, [head] + [b"\4" * 65536] * (size // 65536) + [tail])
        status, _, body, closed = _read_response(sock, timeout=10)
    assert (status, body) == (507, b'{"detail":"Library storage limit exceeded"}')
    assert sent < length and closed
    assert _tmp_files(server) == []

    # library_id after the file: the bound is the roomiest library's, so the upload goes through.
    image = png_bytes(902) + b"\0" * size  # trailing bytes after IEND: still a PNG
    head, _ = _multipart("lib2", fields, "asset_data", b"")
    body = (head + image + b"\r\n--lib2\r\nContent-Disposition: form-data; name=\"library_id\"\r\n\r\n"
            + roomy.encode() + b"\r\n--lib2--\r\n")
    r = httpx.post(f"{server.base_url}/api/assets", content=body, timeout=30, headers={
        "Authorization": f"Bearer {account.api_key}", "Content-Type": "multipart/form-data; boundary=lib2"})
    assert r.status_code == 201, r.text
    stored = run(db.fetchval("SELECT library_id FROM assets WHERE id = $1", ids.decode(ids.ASSET, r.json()["id"])))
    assert stored == ids.decode(ids.LIBRARY, roomy)


def test_wrong_current_passwords_on_change_password_are_throttled_like_sign_ins(login_server):
    """A stolen session must not guess the account's password through the change-password route."""
    base = login_server.immich_url
    email, _ = _user(login_server)
    with _client(base) as http:
        token = http.post("/api/auth/login", json={"email": email, "password": "right-password"}).json()["accessToken"]
        headers = {"Authorization": f"Bearer {token}"}
        answers = [http.post("/api/auth/change-password", headers=headers,
                             json={"password": f"guess-{i}", "newPassword": "mine-now"}) for i in range(7)]
        statuses = [r.status_code for r in answers]
        assert statuses[:6] == [400] * 5 + [429], statuses
        assert 1 <= int(answers[5].headers["retry-after"]) <= WINDOW
        # Even the right password waits out the window from this address.
        right = http.post("/api/auth/change-password", headers=headers,
                          json={"password": "right-password", "newPassword": "mine-now"})
        assert right.status_code == 429
    # Another address that has not failed changes it.
    with _client(base, "127.0.0.3") as other:
        done = other.post("/api/auth/change-password", headers=headers,
                          json={"password": "right-password", "newPassword": "mine-now"})
        assert done.status_code == 200, done.text
