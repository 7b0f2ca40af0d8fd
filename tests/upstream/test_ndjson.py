"""NDJSON framing of the upstream stream (protocol §8.1), from raw bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proxy.upstream.ndjson import LineTooLong, NdjsonDecoder

EXAMPLES = sorted((Path(__file__).parent.parent / "fixtures" / "upstream").glob("*.ndjson"))
LIMIT = 1024 * 1024


def decode_all(chunks: list[bytes], limit: int = LIMIT) -> list[object]:
    decoder = NdjsonDecoder(limit)
    objects: list[object] = []
    for chunk in chunks:
        objects.extend(decoder.feed(chunk))
    return objects + decoder.close()


def reference(raw: bytes) -> list[object]:
    return [json.loads(line) for line in raw.split(b"\n") if line.strip()]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_split_point_gives_the_same_events(path):
    raw = path.read_bytes()
    expected = reference(raw)
    assert expected, "example stream is empty"
    for cut in range(len(raw) + 1):
        assert decode_all([raw[:cut], raw[cut:]]) == expected, f"split at byte {cut}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_byte_by_byte_feeding(path):
    raw = path.read_bytes()
    assert decode_all([raw[i : i + 1] for i in range(len(raw))]) == reference(raw)


def test_unicode_line_separators_inside_strings_do_not_split_events():
    text = "a\u2028b\u2029c\x85d é 漢字 🎉"
    raw = json.dumps({"type": "text-delta", "text": text}, ensure_ascii=False).encode() + b"\n"
    # Split inside the multi-byte characters as well.
    for cut in range(len(raw)):
        assert decode_all([raw[:cut], raw[cut:]]) == [{"type": "text-delta", "text": text}]


def test_tolerates_data_prefix_done_blank_garbage_and_crlf():
    raw = (
        b'data: {"type":"text-delta","text":"x"}\r\n'
        b"\n   \n"
        b":keepalive\n"
        b"not json at all\n"
        b'{"type": "broken"\n'
        b"data: [DONE]\n"
        b"[DONE]\n"
        b'{"type":"finish"}'
    )
    assert decode_all([raw]) == [{"type": "text-delta", "text": "x"}, {"type": "finish"}]


def test_a_line_of_many_megabytes_is_parsed_in_pieces():
    padding = "p" * (20 * 1024 * 1024)
    raw = json.dumps({"type": "start-step", "request": {"body": padding}}).encode() + b"\n{}\n"
    chunks = [raw[i : i + 65536] for i in range(0, len(raw), 65536)]
    objects = decode_all(chunks, limit=64 * 1024 * 1024)
    assert objects[0]["request"]["body"] == padding
    assert objects[1] == {}


def test_a_line_beyond_the_cap_is_a_clear_error_even_without_a_newline():
    decoder = NdjsonDecoder(2048)
    with pytest.raises(LineTooLong, match="2048 bytes"):
        for _ in range(10):
            decoder.feed(b"x" * 512)


def test_a_complete_line_beyond_the_cap_is_refused():
    with pytest.raises(LineTooLong):
        NdjsonDecoder(1024).feed(b'{"t":"' + b"y" * 2000 + b'"}\n')
