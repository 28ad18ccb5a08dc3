"""Discovery and server information: what an Immich client asks before it logs in."""

import msgspec
from litestar import Controller, get, post

from app.api.state import Shared
from app.domain import access, media_types, sessions
from app.domain.errors import BadRequest
from compat import dtos
from compat.auth import ImmichAuth

VERSION = dtos.ServerVersionResponseDto(major=3, minor=1, patch=0, prerelease=None)

# Only what this server really does is switched on, so clients hide the rest.
FEATURES = dtos.ServerFeaturesDto(
    configFile=False,
    duplicateDetection=False,
    email=False,
    facialRecognition=False,
    importFaces=False,
    map=True,
    oauth=False,
    oauthAutoLaunch=False,
    ocr=False,
    passwordLogin=True,
    realtimeTranscoding=False,
    reverseGeocoding=True,
    search=True,  # metadata search; smart (CLIP) search stays off
    sidecar=True,
    smartSearch=False,
    trash=True,
)


@get("/.well-known/immich", sync_to_thread=False, public=True)
def well_known() -> dict:
    return {"api": {"endpoint": "/api"}}


class ServerController(Controller):
    path = "/api/server"

    @get("/ping", sync_to_thread=False, public=True)
    def ping(self) -> dtos.ServerPingResponse:
        return dtos.ServerPingResponse(res="pong")

    @get("/version", sync_to_thread=False, public=True)
    def version(self) -> dtos.ServerVersionResponseDto:
        return VERSION

    @get("/version-history", sync_to_thread=False, public=True)
    def version_history(self) -> list[dtos.ServerVersionHistoryResponseDto]:
        return []

    @get("/features", sync_to_thread=False, public=True)
    def features(self, shared: Shared) -> dtos.ServerFeaturesDto:
        from app.faces.runtime import models_available

        # Faces are on when the workers have models to run (MODEL_DIR), so clients show People.
        return msgspec.structs.replace(FEATURES, facialRecognition=models_available(shared.settings.model_dir))

    @get("/config", public=True)
    async def config(self, shared: Shared) -> dtos.ServerConfigDto:
        return dtos.ServerConfigDto(
            externalDomain="",
            # False until the first admin signs up (clients then show the sign-up screen).
            isInitialized=await sessions.has_admin(),
            isOnboarded=True,
            loginPageMessage="",
            maintenanceMode=False,
            mapDarkStyleUrl="",
            mapLightStyleUrl="",
            minFaces=shared.settings.face_min_faces,
            oauthButtonText="",
            publicUsers=False,
            trashDays=90,
            userDeleteDelay=7,
        )

    @get("/media-types", sync_to_thread=False, public=True)
    def media_types(self) -> dtos.ServerMediaTypesResponseDto:
        images, videos = media_types.accepted_extensions()
        return dtos.ServerMediaTypesResponseDto(image=images, video=videos, sidecar=[".xmp"])


@post("/api/search/smart", status_code=400, action=access.READ)
async def smart_search(auth: ImmichAuth) -> None:
    raise BadRequest("Smart search needs a CLIP embedding model, which this server does not have yet")
