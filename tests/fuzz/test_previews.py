"""Property: any bytes named .jpg never stop a mail. Random bytes, real images of every format with bytes
flipped, cut or spliced, and intact ones: whatever arrives, the mail is distributed, well-formed, its HTML
references exactly the previews it carries (each clean and within the limits), and every link downloads
exactly the bytes that were attached."""

from __future__ import annotations

import os
import re
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import images
from tests.support.fuzzing import relay
from tests.support.world import World

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "400")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@cache
def seeds() -> tuple[bytes, ...]:
    """One small real file of each format and variant the relay previews, to damage."""
    still = images.scene((160, 120))
    return (
        images.encode(still, "JPEG"),
        images.camera_jpeg((160, 120), 6, progressive=True),
        images.encode(still.convert("CMYK"), "JPEG"),
        images.png_with_alpha((120, 90)),
        images.png_16_bit((120, 90)),
        images.animated_gif(5),
        images.multipage_tiff(3),
        images.encode(still, "TIFF", compression="tiff_lzw"),
        images.encode(still, "WEBP"),
        images.encode(still, "BMP"),
        images.encode(still, "GIF"),
    )


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds())))
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(data)))
        data[at : at + draw(st.integers(0, 8))] = draw(st.binary(max_size=8))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


any_bytes = st.one_of(
    st.binary(max_size=4000),
    damaged(),
    st.sampled_from(seeds()),
    st.builds(lambda head, tail: head[:20] + tail, st.sampled_from(seeds()), st.binary(max_size=2000)),
)
content_types = st.sampled_from(["image/jpeg", "application/octet-stream", "image/png"])


@FUZZ
@given(blobs=st.lists(st.tuples(any_bytes, content_types), min_size=1, max_size=3))
def test_any_bytes_named_jpg_never_stop_a_mail(shared_world: World, blobs: list[tuple[bytes, str]]) -> None:
    raw = images.camera_mail(*[(f"cam{n}.jpg", kind, data) for n, (data, kind) in enumerate(blobs)])
    result = relay(shared_world, f"incoming/fuzz-previews/{os.urandom(6).hex()}.eml", raw)
    assert result.outcome == "distributed"
    [sent] = result.sent
    relayed = images.read_relayed(sent.raw)  # well-formed, cids matched, every preview clean and small
    plain = relayed.message.get_body(("plain",))
    assert plain is not None
    links = re.findall(r"https://\S+", plain.get_content())
    assert [shared_world.download(link) for link in links] == [data for data, _ in blobs]
    assert len(relayed.previews) <= len(blobs)
