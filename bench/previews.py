"""`make bench`'s preview figures, each measured side by side in one run.

- Making a preview (`app.previews.make`) of a 1080p and a 4K camera JPEG against the plainest way to
  make one with Pillow: `draft()`, `thumbnail()`, save at quality 75. The extra work (the pixel and
  memory checks, orientation, stripping, the size limit) should cost at most 1.2x that.
- The relay's whole time for a mail with a 4K camera JPEG, with `INLINE_PREVIEWS` on against off: what
  a preview adds to a camera mail's latency.

`python -m bench.previews making '{"repeat": 5}'` is the first, in a fresh interpreter (one JSON line);
the second runs the function workload of `bench.workloads` on the local AWS of `bench.run`.
"""

from __future__ import annotations

import io
import json
import statistics
import subprocess
import sys
import time
from typing import Any

from bench import mails
from bench.harness import ROOT, BenchError, Runner, Stored

TARGET_RATIO = 1.2  # preview-making time / the draft()+thumbnail() baseline
SIZES = {"1080p": (1920, 1080), "4K": (3840, 2160)}
INNER = 5  # previews per timing, so one timing is well above the clock's resolution


def camera_jpeg(size: tuple[int, int], seed: int = 4) -> bytes:
    """A camera still: a scene of gradients and shapes under sensor noise, JPEG at quality 90 (a 4K one
    is about 3 MB, as an NVR's snapshot)."""
    from PIL import Image, ImageDraw

    width, height = size
    ramp = Image.linear_gradient("L").resize(size)
    image = Image.merge("RGB", (ramp, ramp.transpose(Image.Transpose.ROTATE_180), Image.new("L", size, 110)))
    draw = ImageDraw.Draw(image)
    for n in range(24):
        x = (n * 7919 * seed) % width
        draw.rectangle([x, height // 2, x + width // 20, height - 1], fill=(60 + n * 7, 80, 160 - n * 3))
    noise = Image.effect_noise(size, 25).convert("RGB")
    out = io.BytesIO()
    Image.blend(image, noise, 0.3).save(out, "JPEG", quality=90)
    return out.getvalue()


def baseline(data: bytes) -> bytes:
    """The plain way: decode at the smallest DCT scale that covers the preview, shrink, save. (A square
    box, `draft("RGB", (640, 640))`, would leave a 16:9 1080p frame at full scale: a slower baseline.)"""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        scale = 640 / max(image.size)
        image.draft("RGB", (round(image.width * scale), round(image.height * scale)))
        image.thumbnail((640, 640))
        out = io.BytesIO()
        image.save(out, "JPEG", quality=75)
    return out.getvalue()


def ours(data: bytes) -> bytes:
    from app import previews

    result = previews.make(data)
    if not isinstance(result, previews.Preview):
        raise RuntimeError(f"no preview: {result}")
    return result.jpeg


def making(spec: dict[str, Any]) -> dict[str, Any]:
    """Child process: per size, `repeat` timings of INNER previews each, the two ways alternating."""
    stills = {name: camera_jpeg(size) for name, size in SIZES.items()}
    results: dict[str, Any] = {}
    for name, data in stills.items():
        ways = {"ours": ours, "baseline": baseline}
        outputs = {way: make(data) for way, make in ways.items()}  # warm-up, and what each makes
        times: dict[str, list[float]] = {way: [] for way in ways}
        for repetition in range(spec["repeat"]):
            for way in list(ways) if repetition % 2 == 0 else list(ways)[::-1]:
                started = time.perf_counter()
                for _ in range(INNER):
                    ways[way](data)
                times[way].append((time.perf_counter() - started) / INNER)
        results[name] = {
            "source_bytes": len(data),
            "preview_bytes": {way: len(output) for way, output in outputs.items()},
            **{f"{way}_s": {"median": statistics.median(t), "runs": t} for way, t in times.items()},
            "ratio": statistics.median(times["ours"]) / statistics.median(times["baseline"]),
            "paired_ratio": statistics.median(
                o / b for o, b in zip(times["ours"], times["baseline"], strict=True)
            ),
        }
    return results


def camera_mail(jpeg: bytes) -> tuple[bytes, str]:
    """The raw mail of an NVR's motion alarm with one 4K snapshot, and its boundary."""
    boundary = "bench-camera-boundary"
    head = (
        "X-SES-Spam-Verdict: PASS\r\nX-SES-Virus-Verdict: PASS\r\n"
        f"From: Camera 7 <{mails.SENDER}>\r\nTo: inbox-7f3k9q@relay.example.com\r\n"
        "Subject: Motion on camera 7\r\nDate: Sun, 29 Nov 2026 09:58:00 +0000\r\n"
        "Message-ID: <bench-camera@plant.example.com>\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Motion detected on camera 7.\r\nEmail_Rxers_Code:[{mails.RECIPIENT}]:Email_Rxers_Code:\r\n"
        f'\r\n--{boundary}\r\nContent-Type: image/jpeg; name="cam7.jpg"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        'Content-Disposition: attachment; filename="cam7.jpg"\r\n\r\n'
    ).encode()
    return head + mails.encode_base64(jpeg) + f"--{boundary}--\r\n".encode(), boundary


def measure(aws: Any, repeat: int) -> dict[str, Any]:
    """Both comparisons, on the local AWS of `bench.run` (imported here: `bench.run` imports this)."""
    making_runs = _child("making", {"repeat": max(3, repeat)}, aws.child_environment())
    jpeg = camera_jpeg(SIZES["4K"])
    raw, boundary = camera_mail(jpeg)
    stored, warmup = (
        Stored(mails.Case("camera-4K", (len(jpeg),)), f"incoming/bench/camera-4k{suffix}", boundary, len(raw))
        for suffix in ("", "-warm-up")
    )
    for item in (stored, warmup):
        aws.s3.put_object(Bucket=aws.incoming, Key=item.key, Body=raw)
    runners = {}
    for setting in ("on", "off"):
        runner = Runner(aws, warmup)  # warmed up on a camera mail: Pillow loaded, as in a warm Lambda
        runner.env = {**runner.env, "INLINE_PREVIEWS": setting}
        runners[setting] = runner
    walls: dict[str, list[float]] = {"on": [], "off": []}
    for repetition in range(repeat):
        for setting in ("on", "off") if repetition % 2 == 0 else ("off", "on"):
            result = runners[setting].function(stored)
            previews_sent = b"multipart/related" in aws.account.sent_mail()[-1].raw
            if previews_sent != (setting == "on"):
                raise BenchError(f"INLINE_PREVIEWS={setting} but the sent mail had previews: {previews_sent}")
            walls[setting].append(result["wall_s"])
            print(
                f"  run {repetition + 1}/{repeat} camera-4K  previews {setting:<3} {result['wall_s']:7.3f} s",
                flush=True,
            )
    on, off = statistics.median(walls["on"]), statistics.median(walls["off"])
    return {
        "making": making_runs,
        "relay_4k": {
            "mail_bytes": len(raw),
            "on_s": {"median": on, "runs": walls["on"]},
            "off_s": {"median": off, "runs": walls["off"]},
            "ratio": on / off,
        },
    }


def _child(kind: str, spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.previews", kind, json.dumps(spec)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise BenchError(f"the previews {kind} workload failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def table(figures: dict[str, Any]) -> list[str]:
    lines = ["", "previews: app.previews.make against draft()+thumbnail()+save (same run, medians)"]
    for name, entry in figures["making"].items():
        ours_ms, base_ms = entry["ours_s"]["median"] * 1000, entry["baseline_s"]["median"] * 1000
        kb = {way: size / 1024 for way, size in entry["preview_bytes"].items()}
        lines.append(
            f"  {name:<6} JPEG {entry['source_bytes'] / 2**20:4.1f} MB: {ours_ms:6.1f} ms vs"
            f" {base_ms:6.1f} ms, {entry['ratio']:.2f}x"
            f" (previews {kb['ours']:.0f} KB and {kb['baseline']:.0f} KB)"
        )
    relay = figures["relay_4k"]
    on, off = relay["on_s"]["median"], relay["off_s"]["median"]
    lines.append(
        f"  relay, 4K camera mail ({relay['mail_bytes'] / 2**20:.1f} MB): previews on {on:.3f} s,"
        f" off {off:.3f} s, {relay['ratio']:.2f}x"
    )
    return lines


def verdicts(figures: dict[str, Any]) -> list[tuple[str, bool]]:
    return [
        (f"preview of a {name} JPEG {entry['ratio']:.2f}x draft()+thumbnail() <= {TARGET_RATIO}x",
         entry["ratio"] <= TARGET_RATIO)
        for name, entry in figures["making"].items()
    ]  # fmt: skip


WORKLOADS = {"making": making}


def main(argv: list[str]) -> int:
    kind, spec = argv[0], json.loads(argv[1])
    print(json.dumps(WORKLOADS[kind](spec)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
