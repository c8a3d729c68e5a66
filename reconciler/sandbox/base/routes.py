"""The routing table of an emulator: verb + path template → handler method and the discovery method it implements."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import unquote

# A path parameter is one segment, and stops at ':' so that `{cluster}:setSize` works (Google's names have no ':').
_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class Route:
    verb: str
    template: str  # e.g. /v1/projects/{project}/locations/{location}/clusters/{cluster}:setResourceLabels
    handler: str  # the handler's method name, called as handler(query, **path_parameters)
    method_id: str  # e.g. container.projects.locations.clusters.setResourceLabels ("" for control endpoints)
    read: bool  # counted as a read in the request log (getIamPolicy is a POST that reads)
    pattern: re.Pattern


def route(verb: str, template: str, handler: str, method_id: str = "", *, read: bool | None = None) -> Route:
    regex = ""
    position = 0
    for parameter in _PARAMETER.finditer(template):
        regex += re.escape(template[position:parameter.start()]) + f"(?P<{parameter.group(1)}>[^/:]+)"
        position = parameter.end()
    regex += re.escape(template[position:])
    return Route(verb, template, handler, method_id, verb in ("GET", "HEAD") if read is None else read,
                 re.compile(f"^{regex}$"))


class RouteTable:
    def __init__(self, routes: Iterable[Route]):
        self._routes = tuple(routes)

    def __iter__(self) -> Iterator[Route]:
        return iter(self._routes)

    def match(self, verb: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The first route for this verb and path, with its path parameters URL-decoded."""
        for candidate in self._routes:
            if candidate.verb == verb and (found := candidate.pattern.match(path)):
                return candidate, {name: unquote(value) for name, value in found.groupdict().items()}
        return None
