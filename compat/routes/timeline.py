"""The web client's timeline (month buckets, columnar bucket contents) and map markers."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta

from litestar import get

from app.domain import access, albums, assets, tags, timeline
from app.domain.asset_filters import AssetFilter
from app.domain.effective import ratings_for_favorite
from app.domain.errors import BadRequest
from compat import dtos, mapping
from compat.auth import ImmichAuth


async def _filter(auth: ImmichAuth, albumId: str | None, isFavorite: bool | None, isTrashed: bool | None,
                  visibility: str | None, userId: str | None = None, tagId: str | None = None) -> AssetFilter:
    if auth.principal.shared_link is not None and (isTrashed or not albumId or tagId):
        # a link shows its album's live assets, never a library's timeline (Immich's timeline.read)
        raise BadRequest("Not found or no timeline.read access")
    tag_ids = None
    if tagId:  # one of the caller's tags (Immich's tag.read access), matching the tags below it too
        tag_ids = [mapping.parse_uuid(tagId, "tagId")]
        await tags.require_tags(auth.principal, tag_ids)
    narrowing = dict(
        tag_ids=tag_ids,
        state="trashed" if isTrashed else "live",
        ratings=None if isFavorite is None else ratings_for_favorite(isFavorite),
        # The timeline shows timeline assets unless a visibility is asked for (hidden = live-photo motion parts).
        visibility=visibility or (None if isTrashed else "timeline"),
    )
    if albumId:  # read in the album's library, which is another's when the album is shared with the caller
        return await albums.contents_filter(auth.principal, mapping.parse_uuid(albumId, "albumId"), **narrowing)
    if userId:  # one user's timeline: the caller's own, or a partner's (Immich's partner page)
        user = mapping.parse_uuid(userId, "userId")
        return AssetFilter(library_id=await access.timeline_library_of(auth.principal, user),
                           through_share=user != auth.principal.user_id, elevated=auth.principal.elevated,
                           **narrowing)
    return AssetFilter(library_id=await access.preferred_library(auth.principal), elevated=auth.principal.elevated,
                       **narrowing)


async def _with_partners(auth: ImmichAuth, own: AssetFilter, albumId: str | None, isFavorite: bool | None,
                         isTrashed: bool | None, visibility: str | None) -> list[AssetFilter]:
    """The caller's filter, and the same filter over each library of a partner the caller shows in
    its timeline (read-only). One filter per library: a list walk pages one library. An album's
    timeline is the album's, so partners add nothing to it."""
    if albumId:
        return [own]
    # Immich's rule: an unset visibility counts as asking for the archive too.
    if visibility in (None, "archive") or isFavorite is not None or isTrashed:
        raise BadRequest("withPartners is only supported for non-archived, non-trashed, non-favorited assets")
    partner_libraries = await access.partner_timeline_libraries(auth.principal)
    return [own, *(dataclasses.replace(own, library_id=library, through_share=True) for library in partner_libraries)]


async def _filters(auth: ImmichAuth, albumId: str | None, isFavorite: bool | None, isTrashed: bool | None,
                   visibility: str | None, withPartners: bool, userId: str | None,
                   tagId: str | None) -> list[AssetFilter]:
    own = await _filter(auth, albumId, isFavorite, isTrashed, visibility, userId, tagId)
    if not withPartners:
        return [own]
    return await _with_partners(auth, own, albumId, isFavorite, isTrashed, visibility)


@get("/api/timeline/buckets", action=access.READ, shared_link=True)  # with an ALBUM link's albumId
async def time_buckets(auth: ImmichAuth, albumId: str | None = None, isFavorite: bool | None = None,
                       isTrashed: bool | None = None, visibility: dtos.AssetVisibility | None = None,
                       order: dtos.AssetOrder = "desc", withPartners: bool = False,
                       userId: str | None = None, tagId: str | None = None) -> list[dtos.TimeBucketsResponseDto]:
    totals: dict[datetime, int] = {}
    for f in await _filters(auth, albumId, isFavorite, isTrashed, visibility, withPartners, userId, tagId):
        rows, _ = await assets.counts(f, group_by="month", order="desc", limit=100_000, starting_after_bucket=None)
        for r in rows:
            totals[r["time_bucket"]] = totals.get(r["time_bucket"], 0) + r["count"]
    return [dtos.TimeBucketsResponseDto(timeBucket=bucket.date().isoformat(), count=count)
            for bucket, count in sorted(totals.items(), reverse=order != "asc")]


def _month(value: str) -> tuple[datetime, datetime]:
    try:
        start = date.fromisoformat(value[:10]).replace(day=1)
        end = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
        # Bounds are exclusive: just before the month starts, and the next month's start.
        return (datetime.combine(start, datetime.min.time()) - timedelta(microseconds=1),
                datetime.combine(end, datetime.min.time()))
    except (ValueError, OverflowError):  # not a date, or a month at the calendar's ends (0001-01, 9999-12)
        raise BadRequest("timeBucket must be a date like 2024-02-01") from None


@get("/api/timeline/bucket", action=access.READ, shared_link=True)
async def time_bucket(auth: ImmichAuth, timeBucket: str, albumId: str | None = None, isFavorite: bool | None = None,
                      isTrashed: bool | None = None, visibility: dtos.AssetVisibility | None = None,
                      order: dtos.AssetOrder = "desc",
                      withCoordinates: bool = False, withPartners: bool = False, userId: str | None = None,
                      tagId: str | None = None) -> dict:
    after, before = _month(timeBucket)
    filters = await _filters(auth, albumId, isFavorite, isTrashed, visibility, withPartners, userId, tagId)
    link = auth.principal.shared_link
    c = await timeline.bucket_columns(
        filters, after=after, before=before, order="asc" if order == "asc" else "desc",
        # a link that hides metadata hides where a photo was taken
        with_places=withCoordinates, hide_places=link is not None and not link.show_metadata)
    return bucket_body(c, withCoordinates)


def bucket_body(c: timeline.BucketColumns, with_coordinates: bool) -> dict[str, list]:
    """The domain's columns under Immich's names (TimeBucketAssetResponseDto)."""
    body = {
        "id": c.id, "ownerId": c.owner_id, "ratio": c.ratio, "isFavorite": c.favorite, "isImage": c.image,
        "isTrashed": c.trashed, "thumbhash": c.thumbhash, "fileCreatedAt": c.taken_at,
        "localOffsetHours": c.local_offset_hours, "duration": c.duration_ms, "projectionType": c.projection_type,
        "livePhotoVideoId": c.live_photo_video_id, "visibility": c.visibility, "createdAt": c.created_at,
        "stack": c.stack,
    }
    if with_coordinates:
        body.update(latitude=c.latitude, longitude=c.longitude, city=c.city, country=c.country)
    return body


@get("/api/map/markers", action=access.READ)
async def map_markers(auth: ImmichAuth, isArchived: bool | None = None, isFavorite: bool | None = None,
                      withPartners: bool = False) -> list[dtos.MapMarkerResponseDto]:
    own = await _filter(auth, None, isFavorite, False, None if isArchived else "timeline")
    filters = [own]
    if withPartners:  # the partners shown in the caller's timeline, as Immich's map does
        filters += [dataclasses.replace(own, library_id=library, through_share=True)
                    for library in await access.partner_timeline_libraries(auth.principal)]
    rows = [r for f in filters for r in await assets.markers(f)]
    return [dtos.MapMarkerResponseDto(id=str(r["id"]), lat=r["latitude"], lon=r["longitude"], city=r["city"],
                                      state=r["state"], country=r["country"]) for r in rows]


