"""Immich's map tag: place names for a point (markers live with the timeline, album markers with albums)."""

from __future__ import annotations

from litestar import get
from litestar.params import Parameter

from app.domain import access, search
from compat import dtos
from compat.auth import ImmichAuth


@get("/api/map/reverse-geocode", action=access.READ)
async def reverse_geocode(auth: ImmichAuth, lat: float = Parameter(ge=-90, le=90),
                          lon: float = Parameter(ge=-180, le=180)) -> list[dtos.MapReverseGeocodeResponseDto]:
    """The nearest town from the offline gazetteer, or none when nothing is within reach (Immich's list of at most one)."""
    place = await search.place_at(auth.principal, lat, lon)
    if place is None:
        return []
    return [dtos.MapReverseGeocodeResponseDto(city=place.city, state=place.state, country=place.country)]


ROUTES = [reverse_geocode]
