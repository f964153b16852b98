"""The client's IP address for rate limits and logs. ``X-Forwarded-For`` is believed only when
the socket peer is a trusted proxy (setting ``trusted_proxies``: addresses or CIDRs); then the
address is the right-most hop that is not itself a trusted proxy (the left part of the header is
whatever the client sent and cannot be trusted)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
UNKNOWN = "unknown"


def _parse(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None


class TrustedProxies:
    def __init__(self, entries: Iterable[str]) -> None:
        self._networks: list[_Network] = []
        for entry in entries:
            self._networks.append(ipaddress.ip_network(entry.strip(), strict=False))

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, host: str) -> bool:
        addr = _parse(host)
        return addr is not None and any(addr in net for net in self._networks)

    def client_ip(self, peer: str | None, forwarded_for: str | None) -> str:
        """The client address given the socket ``peer`` and the ``X-Forwarded-For`` header."""
        if not peer:
            return UNKNOWN
        if not forwarded_for or not self.trusts(peer):
            return peer
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        for hop in reversed(hops):
            if _parse(hop) is None:  # garbage in the header: stop at the last good hop
                break
            if not self.trusts(hop):
                return hop
            peer = hop
        return peer


def connection_ip(
    client: tuple[str, int] | None, headers: Mapping[str, str], proxies: TrustedProxies | None
) -> str:
    """The client IP of a Starlette ``Request``/``WebSocket`` (its ``client``, ``headers``)."""
    peer = client[0] if client else None
    if proxies is None:
        return peer or UNKNOWN
    return proxies.client_ip(peer, headers.get("x-forwarded-for"))
