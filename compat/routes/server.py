"""Discovery and server information: what an Immich client asks before it logs in."""

import os
import shutil
from collections.abc import Mapping

import msgspec
from litestar import Controller, delete, get, put

from app.api.state import Shared
from app.domain import access, licenses, media_types, sessions, system_config, system_metadata, users
from compat import dtos, mapping
from compat.auth import ImmichAuth

VERSION = dtos.ServerVersionResponseDto(major=3, minor=1, patch=0, prerelease=None)
VERSION_TAG = f"v{VERSION.major}.{VERSION.minor}.{VERSION.patch}"
RELEASE_URL = f"https://github.com/immich-app/immich/releases/tag/{VERSION_TAG}"
APK_DOWNLOAD_URL = f"https://github.com/immich-app/immich/releases/download/{VERSION_TAG}"

# The about fields an image builder sets through the environment, under the variables Immich reads.
BUILD_ENV = {
    "build": "IMMICH_BUILD",
    "buildUrl": "IMMICH_BUILD_URL",
    "buildImage": "IMMICH_BUILD_IMAGE",
    "buildImageUrl": "IMMICH_BUILD_IMAGE_URL",
    "repository": "IMMICH_REPOSITORY",
    "repositoryUrl": "IMMICH_REPOSITORY_URL",
    "sourceRef": "IMMICH_SOURCE_REF",
    "sourceCommit": "IMMICH_SOURCE_COMMIT",
    "sourceUrl": "IMMICH_SOURCE_URL",
    "thirdPartySourceUrl": "IMMICH_THIRD_PARTY_SOURCE_URL",
    "thirdPartyBugFeatureUrl": "IMMICH_THIRD_PARTY_BUG_FEATURE_URL",
    "thirdPartyDocumentationUrl": "IMMICH_THIRD_PARTY_DOCUMENTATION_URL",
    "thirdPartySupportUrl": "IMMICH_THIRD_PARTY_SUPPORT_URL",
}

# Only what this server really does is switched on, so clients hide the rest; the flags the system
# config turns on and off are set per request in `features`.
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
    search=True,
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

    @get("/features", public=True)
    async def features(self, shared: Shared) -> dtos.ServerFeaturesDto:
        from app.domain import smart_search
        from app.faces.runtime import models_available

        config = await system_config.current()
        clip = await smart_search.config()
        # CLIP search (and duplicate detection, which compares its embeddings) when the config
        # allows it and the model's files are there.
        clip_ready = clip.enabled and smart_search.model_available(shared.settings.model_dir, clip.model)
        learning = config["machineLearning"]
        return msgspec.structs.replace(
            FEATURES,
            configFile=system_config.config_file() is not None,
            # Faces run when the config allows them and the workers have models (MODEL_DIR).
            facialRecognition=learning["enabled"] and learning["facialRecognition"]["enabled"]
            and models_available(shared.settings.model_dir),
            smartSearch=clip_ready,
            duplicateDetection=clip_ready and clip.duplicates,
            map=config["map"]["enabled"],
            passwordLogin=config["passwordLogin"]["enabled"],
            trash=config["trash"]["enabled"],
        )

    @get("/config", public=True)
    async def config(self) -> dtos.ServerConfigDto:
        config = await system_config.current()
        return dtos.ServerConfigDto(
            externalDomain=config["server"]["externalDomain"],
            # False until the first admin signs up (clients then show the sign-up screen).
            isInitialized=await sessions.has_admin(),
            # False until an admin finishes onboarding (POST /api/system-metadata/admin-onboarding).
            isOnboarded=await system_metadata.admin_onboarded(),
            loginPageMessage=config["server"]["loginPageMessage"],
            maintenanceMode=False,
            mapDarkStyleUrl=config["map"]["darkStyle"],
            mapLightStyleUrl=config["map"]["lightStyle"],
            minFaces=config["machineLearning"]["facialRecognition"]["minFaces"],
            oauthButtonText=config["oauth"]["buttonText"],
            publicUsers=config["server"]["publicUsers"],
            trashDays=config["trash"]["days"],
            userDeleteDelay=config["user"]["deleteDelay"],
        )

    @get("/media-types", sync_to_thread=False, public=True)
    def media_types(self) -> dtos.ServerMediaTypesResponseDto:
        images, videos = media_types.accepted_extensions()
        return dtos.ServerMediaTypesResponseDto(image=images, video=videos, sidecar=[".xmp"])

    @get("/about", action=access.READ)
    async def about(self, auth: ImmichAuth) -> dtos.ServerAboutResponseDto:
        import av
        import pyvips

        return dtos.ServerAboutResponseDto(
            version=VERSION_TAG, versionUrl=RELEASE_URL, licensed=await licenses.is_server_licensed(),
            libvips=f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}", ffmpeg=av.__version__,
            **build_metadata(os.environ),
        )

    @get("/storage", action=access.READ)
    async def storage(self, auth: ImmichAuth, shared: Shared) -> dtos.ServerStorageResponseDto:
        usage = shutil.disk_usage(shared.settings.data_dir)
        return dtos.ServerStorageResponseDto(
            diskSize=_human(usage.total), diskSizeRaw=usage.total, diskUse=_human(usage.used),
            diskUseRaw=usage.used, diskAvailable=_human(usage.free), diskAvailableRaw=usage.free,
            diskUsagePercentage=round(usage.used / usage.total * 100, 2) if usage.total else 0.0,
        )

    @get("/statistics", action=access.READ, admin=True)
    async def statistics(self, auth: ImmichAuth) -> dtos.ServerStatsResponseDto:
        rows = await users.usage_by_user()
        by_user = [dtos.UsageByUserDto(userId=str(r["id"]), userName=r["name"], photos=r["photos"],
                                       videos=r["videos"], usage=r["usage"], usagePhotos=r["usage_photos"],
                                       usageVideos=r["usage_videos"], quotaSizeInBytes=r["storage_limit_bytes"])
                   for r in rows]
        return dtos.ServerStatsResponseDto(
            photos=sum(r["photos"] for r in rows), videos=sum(r["videos"] for r in rows),
            usage=sum(r["usage"] for r in rows), usagePhotos=sum(r["usage_photos"] for r in rows),
            usageVideos=sum(r["usage_videos"] for r in rows), usageByUser=by_user,
        )

    @get("/version-check", action=access.READ)
    async def version_check(self, auth: ImmichAuth) -> dtos.VersionCheckStateResponseDto:
        # Never checked (this server does not phone home): Immich's answer with its check turned off.
        return dtos.VersionCheckStateResponseDto(**await system_metadata.version_check_state())

    @get("/license", action=access.READ, admin=True)
    async def license(self, auth: ImmichAuth) -> dtos.UserLicense:
        return mapping.license_response(await licenses.server_license(auth.principal))

    @put("/license", action=access.WRITE, admin=True)
    async def set_license(self, auth: ImmichAuth, data: dtos.LicenseKeyDto) -> dtos.UserLicense:
        return mapping.license_response(
            await licenses.set_server_license(auth.principal, data.licenseKey, data.activationKey))

    @delete("/license", status_code=204, action=access.DELETE, admin=True)
    async def delete_license(self, auth: ImmichAuth) -> None:
        await licenses.delete_server_license(auth.principal)

    @get("/apk-links", action=access.READ)
    async def apk_links(self, auth: ImmichAuth) -> dtos.ServerApkLinksDto:
        # The Immich Android app of the release this server speaks, as Immich links it.
        return dtos.ServerApkLinksDto(
            arm64v8a=f"{APK_DOWNLOAD_URL}/app-arm64-v8a-release.apk",
            armeabiv7a=f"{APK_DOWNLOAD_URL}/app-armeabi-v7a-release.apk",
            universal=f"{APK_DOWNLOAD_URL}/app-release.apk",
            x86_64=f"{APK_DOWNLOAD_URL}/app-x86_64-release.apk",
        )


def build_metadata(environ: Mapping[str, str]) -> dict[str, str]:
    """The about fields whose variables are set; an unset one is left out of the answer, as Immich does."""
    return {field: environ[name] for field, name in BUILD_ENV.items() if name in environ}


def _human(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{size} B"
        size /= 1024
    return f"{size} B"
