"""Images made in the tests with Pillow: what cameras, NVRs and chart exporters send, and what an
attacker would. Every generator is cheap (the 400-megapixel bomb is a few kilobytes of valid PNG)."""

from __future__ import annotations

import io
import re
import struct
import zlib
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

from PIL import Image, ImageCms, ImageDraw

from app import previews
from app.mail import rewrite

RED = (230, 30, 30)
BLUE = (30, 30, 230)
SERIAL = "CAM-SERIAL-7F3K9Q-0042"  # the maker note's secret, searched for in previews
OWNER = "Plant 4 gate camera, owner J. Example"
GPS_LATITUDE = (52.0, 31.0, 12.345)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def halves(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """Left half red, right half blue: which way a preview was turned shows in its corners."""
    image = Image.new("RGB", size, RED)
    image.paste(BLUE, (size[0] // 2, 0, size[0], size[1]))
    return image if mode == "RGB" else image.convert(mode)


def scene(size: tuple[int, int], noise: float = 0.0) -> Image.Image:
    """Something like a camera still: gradients, shapes, and sensor noise when asked (noise makes a
    JPEG large, as a dark night shot is)."""
    width, height = size
    sky = Image.linear_gradient("L").resize(size)
    image = Image.merge("RGB", (sky, sky.transpose(Image.Transpose.ROTATE_180), Image.new("L", size, 120)))
    draw = ImageDraw.Draw(image)
    for x in range(0, width, max(1, width // 16)):
        draw.line([(x, height), (width // 2, height // 3)], fill=(90, 90, 90), width=max(1, width // 400))
    draw.ellipse([width // 3, height // 3, width // 2, height * 2 // 3], fill=(250, 210, 40))
    if noise:
        grain = Image.effect_noise(size, noise).convert("RGB")
        image = Image.blend(image, grain, 0.35)
    return image


def exif_with_secrets(orientation: int = 1) -> Image.Exif:
    """EXIF as a camera writes it: orientation, GPS position, owner, serial number in a maker note."""
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    exif[0x013B] = OWNER  # Artist
    exif[0x010F] = "ExampleCam"  # Make
    gps = exif.get_ifd(0x8825)  # GPS IFD
    gps[1] = "N"  # GPSLatitudeRef
    gps[2] = GPS_LATITUDE  # GPSLatitude
    gps[3] = "E"
    gps[4] = (13.0, 24.0, 56.789)
    details = exif.get_ifd(0x8769)  # Exif IFD
    details[0x927C] = SERIAL.encode() * 4  # MakerNote
    details[0xA431] = SERIAL  # BodySerialNumber
    return exif


def srgb_profile() -> bytes:
    return bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())


def camera_jpeg(
    size: tuple[int, int] = (1280, 720),
    orientation: int = 1,
    *,
    image: Image.Image | None = None,
    **options: object,
) -> bytes:
    """A JPEG with everything a camera writes around the pixels: EXIF (GPS, maker note, serial), an ICC
    profile, XMP and a comment."""
    return encode(
        image or halves(size),
        "JPEG",
        quality=90,
        exif=exif_with_secrets(orientation),
        icc_profile=srgb_profile(),
        xmp=f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:li>{OWNER}</rdf:li></x:xmpmeta>'.encode(),
        comment=f"{SERIAL} {OWNER}",
        **options,
    )


def png_with_alpha(size: tuple[int, int] = (400, 300)) -> bytes:
    """Left half fully transparent, right half opaque blue."""
    image = Image.new("RGBA", size, (*BLUE, 255))
    image.paste((0, 0, 0, 0), (0, 0, size[0] // 2, size[1]))
    return encode(image, "PNG")


def png_16_bit(size: tuple[int, int] = (500, 300)) -> bytes:
    """A 16-bit grayscale ramp over a narrow range (a thermal camera's radiometric frame)."""
    ramp = Image.linear_gradient("L").resize(size).convert("I").point(lambda v: v * 40 + 20000)
    return encode(ramp.convert("I;16"), "PNG")


def animated_gif(frames: int) -> bytes:
    """`frames` frames: the first red, every other blue. Pillow writes two; the second is repeated as
    written, so thousands cost nothing to make."""
    first, second = Image.new("P", (64, 48)), Image.new("P", (64, 48))
    first.putpalette([*RED, *BLUE] + [0] * 762)
    second.putpalette([*RED, *BLUE] + [0] * 762)
    second.paste(1, (0, 0, 64, 48))
    two = encode(first, "GIF", save_all=True, append_images=[second], optimize=False, duration=40, loop=0)
    start = two.index(b"\x21\xf9", two.index(b"\x21\xf9") + 1)  # the second frame's control extension
    assert two.endswith(b";")
    return two[:start] + two[start:-1] * (frames - 1) + b";"


def multipage_tiff(pages: int) -> bytes:
    """`pages` pages: the first red, the rest blue."""
    first = Image.new("RGB", (96, 64), RED)
    rest = [Image.new("RGB", (96, 64), BLUE)] * (pages - 1)
    return encode(first, "TIFF", save_all=True, append_images=rest, compression="tiff_deflate")


def bomb_png(width: int, height: int) -> bytes:
    """A valid bilevel PNG of width x height white pixels: kilobytes that decode to width x height bytes
    (Pillow holds a bilevel pixel in a byte), e.g. 400 MB for 20000 x 20000."""
    row = b"\x00" + b"\xff" * ((width + 7) // 8)  # filter type 0, then the packed bits
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def flat_png(size: tuple[int, int], depth: int, colour_type: int, pixel: bytes, chunks: bytes = b"") -> bytes:
    """A valid PNG of one repeated `pixel` (its bytes as the IHDR's depth and colour type pack them),
    written row by row: a 40-megapixel one costs a fraction of a second and no memory to make.
    `chunks` go before the pixels (PLTE, tRNS)."""
    width, height = size
    row = b"\x00" + pixel * width  # filter type 0
    packer = zlib.compressobj(1)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + chunks + png_chunk(b"IDAT", data)
        + png_chunk(b"IEND", b"")
    )  # fmt: skip


def webp_canvas(size: tuple[int, int], alpha: bool = False) -> bytes:
    """A two-frame animated WebP of 64 x 48 pixels whose header claims a `size` canvas: a few hundred
    bytes that make libwebp's animation decoder allocate and fill canvases of the claimed size."""
    mode = "RGBA" if alpha else "RGB"
    frames = [Image.new(mode, (64, 48), RED), Image.new(mode, (64, 48), BLUE)]
    data = bytearray(encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=40))
    header = data.index(b"VP8X") + 8  # flags (1 byte), reserved (3), width - 1 (3), height - 1 (3)
    data[header] = data[header] | 0x10 if alpha else data[header] & ~0x10  # the alpha flag: RGBA or RGB
    data[header + 4 : header + 7] = struct.pack("<I", size[0] - 1)[:3]
    data[header + 7 : header + 10] = struct.pack("<I", size[1] - 1)[:3]
    return bytes(data)


def bmp_rle8(size: tuple[int, int]) -> bytes:
    """An 8-bit run-length-encoded BMP of one colour: a few bytes a row, whatever its width."""
    width, height = size
    runs, left = bytearray(), width
    while left:
        runs += bytes([min(255, left), 1])  # a run of up to 255 pixels of colour 1
        left -= min(255, left)
    body = (bytes(runs) + b"\x00\x00") * height + b"\x00\x01"  # end of line ... end of bitmap
    palette = bytes([*reversed(BLUE), 0, *reversed(RED), 0]) + b"\x00" * (254 * 4)  # BGRx
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(body), 2835, 2835, 256, 0)
    offset = 14 + len(info) + len(palette)
    return b"BM" + struct.pack("<IHHI", offset + len(body), 0, 0, offset) + info + palette + body


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small JPEG whose frame header claims another size (a decompression bomb's header)."""
    data = bytearray(encode(Image.new("RGB", (16, 16), RED), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def progressive_scan_bomb(side: int, scans: int) -> bytes:
    """A valid grey progressive JPEG followed by `scans` extra AC scans of a few bytes each: every scan
    makes libjpeg walk every block (an end-of-band run of up to 32767 blocks per symbol), so a megabyte
    of them costs minutes of CPU (the scan-count attack libjpeg's documentation warns about)."""
    base = encode(Image.new("L", (side, side), 128), "JPEG", progressive=True, quality=50)
    blocks = ((side + 7) // 8) ** 2
    # AC Huffman table 1 with a single one-bit code "0" for symbol 0xE0: an end-of-band run, 14 more bits.
    table = b"\x11" + bytes([1] + [0] * 15) + b"\xe0"
    huffman = b"\xff\xc4" + struct.pack(">H", 2 + len(table)) + table
    bits = ""
    while blocks > 0:
        run = min(32767, max(blocks, 1 << 14))
        bits += "0" + format(run - (1 << 14), "014b")
        blocks -= run
    bits += "1" * (-len(bits) % 8)
    data = bytes(int(bits[n : n + 8], 2) for n in range(0, len(bits), 8)).replace(b"\xff", b"\xff\x00")
    # SOS: one component (1) with tables DC 0 / AC 1, spectral band 1..63, no approximation.
    scan = b"\xff\xda" + struct.pack(">H", 8) + b"\x01\x01\x01" + bytes([1, 63, 0]) + data
    return base[:-2] + huffman + scan * scans + b"\xff\xd9"


# ------------------------------------------------------------------------------- reading previews back
ALLOWED_MARKERS = {0xD8, 0xE0, 0xDB, 0xC0, 0xC4, 0xDA, 0xD9}  # SOI, JFIF, DQT, SOF0, DHT, SOS, EOI


def markers(jpeg: bytes) -> list[int]:
    """The JPEG's marker segments in order, up to the first scan (all metadata lives before it)."""
    found, position = [], 2
    assert jpeg[:2] == b"\xff\xd8"
    found.append(0xD8)
    while position < len(jpeg):
        assert jpeg[position] == 0xFF, f"no marker at {position}"
        marker = jpeg[position + 1]
        found.append(marker)
        if marker == 0xDA:
            break
        (length,) = struct.unpack(">H", jpeg[position + 2 : position + 4])
        position += 2 + length
    return found


def assert_clean_preview(jpeg: bytes) -> Image.Image:
    """A valid baseline JPEG within the limits that carries pixels only; returns it decoded."""
    assert len(jpeg) <= previews.MAX_PREVIEW_BYTES
    assert set(markers(jpeg)) <= ALLOWED_MARKERS, [hex(m) for m in markers(jpeg)]
    assert jpeg.endswith(b"\xff\xd9")
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG"
    assert max(image.size) <= previews.LONG_SIDE
    assert not image.getexif()
    assert not {"exif", "icc_profile", "xmp", "comment", "photoshop", "adobe"} & set(image.info)
    for secret in (SERIAL.encode(), OWNER.encode(), b"ExampleCam", b"Exif", b"ICC_PROFILE", b"xmpmeta"):
        assert secret not in jpeg
    image.load()
    return image


def close_to(pixel: object, colour: tuple[int, int, int], tolerance: int = 40) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(int(a) - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


# ------------------------------------------------------------------------------- mails carrying images
def camera_mail(
    *images: tuple[str, str, bytes], code: str = "ops@example.com", html: str | None = None, text: str = ""
) -> bytes:
    """An NVR's mail: a text part with the recipient code and then `text` (8bit when given), an HTML
    part when given, then each (filename, content type, bytes) as a base64 attachment."""
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = "NVR Gate <nvr-4@plant.example.com>"
    message["To"] = "inbox-7f3k9q@relay.example.com"
    message["Subject"] = "Motion detected: gate"
    message["Message-ID"] = "<nvr-4-previews@plant.example.com>"
    body = f"Motion on channel 4.\nEmail_Rxers_Code:[{code}]:Email_Rxers_Code:\n"
    message.set_content(body + text, cte="8bit" if text else None)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for filename, content_type, data in images:
        maintype, _, subtype = content_type.partition("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    head = b"X-SES-Spam-Verdict: PASS\r\nX-SES-Virus-Verdict: PASS\r\n"
    return head + message.as_bytes()


def parsed(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


_CID = re.compile(r"""\bcid:([^"'\s>)]+)""", re.IGNORECASE)
# What a mail client loads by itself, without a click: an attribute that names a resource to show
# (any URL in a srcset counts), a CSS url(), a <link href>. A remote one would be fetched, and kept by
# the client's image proxy.
_FETCHED = re.compile(
    r"""\b(?:src|srcset|background|poster|data|lowsrc|dynsrc)\s*=\s*(?:"[^"]*?|'[^']*?|)https?:"""
    r"""|url\(\s*["']?\s*https?:|<link\b[^>]*\bhref\s*=\s*["']?\s*https?:""",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Relayed:
    """A distributed mail read back: its HTML (if any) and its previews by Content-ID, decoded."""

    message: EmailMessage
    html: str | None
    previews: dict[str, Image.Image]


def read_relayed(raw: bytes) -> Relayed:
    """Parse a distributed mail and check what every one must be: well-formed MIME (no defects, one
    text part), an HTML part that references exactly the `cid:`s the mail carries (never `data:` nor
    anything remote a client loads by itself: src, srcset, background, url(), ...), each a clean
    preview within the limits, and all of them within the mail's budget."""
    message = parsed(raw)
    assert raw.isascii()
    for part in message.walk():
        assert not part.defects, (part.get_content_type(), part.defects)
    plain = message.get_body(("plain",))
    body = message.get_body(("html",))
    html = body.get_content() if body is not None else None
    inline: dict[str, bytes] = {}
    for part in message.walk():
        if part.get_content_type() == "multipart/related":
            assert part.get_param("type") == "text/html"
            children = list(part.iter_parts())
            assert children[0].get_content_type() == "text/html"
            assert all(child.get_content_type() == "image/jpeg" for child in children[1:])
        if part.get_content_maintype() == "image":
            assert part.get_content_type() == "image/jpeg"
            assert part.get_content_disposition() == "inline"
            content_id = str(part["Content-ID"])
            assert content_id[0] + content_id[-1] == "<>"
            inline[content_id[1:-1]] = part.get_content()
    assert (plain is not None) or (html is not None)
    if html is None:
        assert not inline
        return Relayed(message, None, {})
    assert set(_CID.findall(html)) == set(inline)
    assert "data:" not in html.lower()
    fetched = _FETCHED.search(html)
    assert fetched is None, fetched  # nothing a client would load by itself: links only in an href
    markup = html.encode()
    for content_id in inline:  # every preview is shown before the point where Gmail clips
        assert 0 <= markup.find(f"cid:{content_id}".encode()) < rewrite.HTML_LIMIT
    assert sum(len(data) for data in inline.values()) <= previews.MAIL_PREVIEW_BYTES
    assert len(inline) <= previews.MAX_PREVIEWS
    return Relayed(message, html, {cid: assert_clean_preview(data) for cid, data in inline.items()})
