"""The live request view's WebSocket: staff only, fed by usage/live.py."""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from usage.live import GROUP

# Close code for a refused socket (4000-4999 are the application's own; 4403 reads as 403).
FORBIDDEN = 4403


class LiveRequestsConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_staff or not user.is_active:
            await self.close(code=FORBIDDEN)
            return
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def usage_rows(self, event: dict[str, Any]) -> None:
        await self.send_json({"rows": event["rows"]})
