"""Images from either surface -> the upstream image part (protocol §6: data URL + mimeType).

Remote (http/https) images are refused unless the gateway fetches images; then the translator
leaves a placeholder part that the view fills in before sending (proxy/images.py does the
fetching, with SSRF protection, outside this pure core).
"""

from __future__ import annotations

import base64
import binascii
import re

from proxy.translate.catalog import ModelInfo
from proxy.translate.errors import InvalidRequest
from proxy.translate.wire import ImagePart, WireMessage

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)(?:;[^,;]*)*;base64,(?P<data>.*)$", re.DOTALL)


def _checked_mime(mime: str, param: str) -> str:
    mime = mime.lower()
    if mime == "image/jpg":
        mime = "image/jpeg"
    if mime not in IMAGE_TYPES:
        raise InvalidRequest(
            f"Unsupported image type {mime!r}; use one of {', '.join(sorted(IMAGE_TYPES))}.", param=param
        )
    return mime


def _check_base64(data: str, param: str) -> None:
    # A prefix is enough to catch a wrong encoding without decoding megabytes on the hot path.
    head = data[:4096]
    head = head[: len(head) - len(head) % 4] or head
    try:
        base64.b64decode(head, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("Image data is not valid base64.", param=param) from None


def image_from_base64(media_type: str, data: str, *, param: str) -> ImagePart:
    """An inline image (Anthropic ``source.type: base64``)."""
    if not isinstance(data, str) or not data:
        raise InvalidRequest("Image data is empty.", param=param)
    mime = _checked_mime(media_type, param)
    _check_base64(data, param)
    return {"type": "image", "image": f"data:{mime};base64,{data}", "mimeType": mime}


def image_from_url(url: str, *, param: str, allow_remote: bool) -> ImagePart:
    """A data URL, or (when fetching is enabled) a remote URL left for the view to fetch."""
    if not isinstance(url, str) or not url:
        raise InvalidRequest("Image URL is empty.", param=param)
    match = _DATA_URL.match(url)
    if match:
        return image_from_base64(match.group("mime"), match.group("data"), param=param)
    if url.startswith(("http://", "https://")):
        if not allow_remote:
            raise InvalidRequest(
                "Remote image URLs are not fetched by this gateway; send the image inline as a "
                "base64 data URL (or ask the operator to enable CCSITE_IMAGE_FETCH).",
                param=param,
                code="image_url_not_allowed",
            )
        # Placeholder: the view replaces it with the fetched data URL before sending.
        return {"type": "image", "image": url, "mimeType": ""}
    raise InvalidRequest("Image URL must be a base64 data URL or an http(s) URL.", param=param)


def is_remote(part: ImagePart) -> bool:
    return not part["image"].startswith("data:")


def remote_images(messages: list[WireMessage]) -> list[ImagePart]:
    """Image parts still holding a remote URL (to be fetched by the view)."""
    found: list[ImagePart] = []
    for message in messages:
        for part in message["content"]:
            if part["type"] == "image" and is_remote(part):
                found.append(part)
    return found


def has_images(messages: list[WireMessage]) -> bool:
    return any(part["type"] == "image" for message in messages for part in message["content"])


def check_vision(model: ModelInfo | None, messages: list[WireMessage], *, client_model: str) -> None:
    """Images to a text-only model (§13) are a clear 400, not a silent drop upstream."""
    if model is not None and not model.vision and has_images(messages):
        raise InvalidRequest(
            f"The model {client_model!r} ({model.id}) does not accept images; "
            "remove the images or choose a vision model.",
            param="model",
            code="model_not_vision_capable",
        )
