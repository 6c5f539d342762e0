"""The two measured workloads, each run in a fresh interpreter: `python -m bench.workloads KIND SPEC`.

- `limit`: the unavoidable work: get the raw mail from S3, base64-decode each attachment, put it to S3.
- `function`: `app.handler.lambda_handler` on the SQS-wrapped S3 notification of the same mail.
- `cold`: time to first mail in a cold process: import `app.handler` as Lambda does, then relay one
  small mail; nothing is warmed up.
- `floor`: the dependency floor of that: `import boto3`, the function's four clients, flanker's address
  parser tables. Whatever the function adds on a cold start is `cold` minus `floor`.

Both first import what they need and warm up on a tiny mail (clients built, service models, settings and
flanker's tables loaded: a warm Lambda container), then reset the kernel's peak-RSS mark, so import-time
garbage cannot hide the work, and time one mail. The result is one JSON line on stdout. The moto server
runs in the parent process, so objects stored there do not count against the measured process.

This module imports only the standard library at the top: what a workload imports is part of it.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import sys
import time
from collections.abc import Callable
from typing import Any


def read_status() -> dict[str, int]:
    """VmRSS and VmHWM (peak) of this process, in bytes."""
    values: dict[str, int] = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0]) * 1024
    return values


def reset_peak() -> bool:
    """Set VmHWM back to the current RSS (Linux >= 4.0: writing 5 to clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def release_free_memory() -> None:
    """Hand freed heap pages back to the kernel (glibc), so the work cannot hide in memory that is
    resident but free after imports and warm-up, and the baseline is what the process really holds."""
    # Not glibc: the baseline is then a little higher, and the peak above it a little lower.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def measure(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Wall and CPU time of `work`, and its peak RSS above the RSS right before it started."""
    gc.collect()
    release_free_memory()
    peak_reset = reset_peak()
    baseline = read_status()["VmRSS"]
    cpu_started = time.process_time()
    started = time.perf_counter()
    details = work()
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    peak = read_status()["VmHWM"]
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "baseline_rss_bytes": baseline,
        "peak_above_baseline_bytes": max(0, peak - baseline),
        "peak_reset": peak_reset,
        **details,
    }


# -- raw limit --------------------------------------------------------------------------------------


def limit(spec: dict[str, Any]) -> dict[str, Any]:
    import binascii

    import boto3
    from botocore.config import Config

    s3 = boto3.session.Session().client("s3", config=Config(signature_version="s3v4"))

    def offload(key: str, boundary: str, prefix: str) -> dict[str, Any]:
        raw = s3.get_object(Bucket=spec["incoming_bucket"], Key=key)["Body"].read()
        view = memoryview(raw)
        delimiter = b"\r\n--" + boundary.encode()
        sizes: list[int] = []
        start = raw.find(delimiter)
        while start != -1:
            end = raw.find(delimiter, start + len(delimiter))
            if end == -1:
                break
            body_start = raw.find(b"\r\n\r\n", start, end) + 4
            if b"base64" in raw[start:body_start]:
                data = binascii.a2b_base64(view[body_start:end])
                s3.put_object(Bucket=spec["attachments_bucket"], Key=f"{prefix}/{len(sizes)}", Body=data)
                sizes.append(len(data))
                del data
            start = end
        view.release()
        return {"attachment_sizes": sizes}

    offload(spec["warmup_key"], spec["warmup_boundary"], f"{spec['output_prefix']}/warm-up")
    return measure(lambda: offload(spec["key"], spec["boundary"], spec["output_prefix"]))


# -- the function -----------------------------------------------------------------------------------


def function(spec: dict[str, Any]) -> dict[str, Any]:
    from app.handler import lambda_handler
    from localaws.events import sqs_event

    def invoke(key: str) -> dict[str, Any]:
        response = lambda_handler(sqs_event(key, bucket=spec["incoming_bucket"]), None)
        return {"batch_item_failures": len(response["batchItemFailures"])}

    warm_up = invoke(spec["warmup_key"])
    if warm_up["batch_item_failures"]:
        raise RuntimeError("the warm-up mail was not processed")
    return measure(lambda: invoke(spec["key"]))


# -- cold start -------------------------------------------------------------------------------------


def cold(spec: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    from app.handler import lambda_handler
    from localaws.events import sqs_event

    imported = time.perf_counter()
    response = lambda_handler(sqs_event(spec["key"], bucket=spec["incoming_bucket"]), None)
    done = time.perf_counter()
    return {
        "import_s": imported - started,
        "first_mail_s": done - started,
        "batch_item_failures": len(response["batchItemFailures"]),
        "pillow_imported": "PIL" in sys.modules,  # a text-only mail must not pay for previews
    }


def floor(spec: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    import boto3
    from botocore.config import Config

    retries: Any = {"mode": "standard", "max_attempts": 5}
    session = boto3.session.Session()
    session.client("s3", config=Config(retries=retries, signature_version="s3v4"))
    session.client("sesv2", config=Config(retries=retries))
    session.client("sns", config=Config(retries=retries))
    session.client("secretsmanager", config=Config(retries=retries))  # the link keys (template's links)
    from flanker.addresslib import address

    address.parse("sensor@plant.example.com", addr_spec_only=True)  # loads the parser's tables
    return {"floor_s": time.perf_counter() - started}


WORKLOADS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "limit": limit,
    "function": function,
    "cold": cold,
    "floor": floor,
}


def main(argv: list[str]) -> int:
    kind, spec = argv[0], json.loads(argv[1])
    result = WORKLOADS[kind](spec)
    print(json.dumps({"workload": kind, **result}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
