from litestar import get
from litestar.response import Response


@get("/api/server/ping", media_type="text/plain", sync_to_thread=False, public=True)
def ping() -> Response[str]:
    return Response("pong", media_type="text/plain")
