"""What the benchmark's workloads share: the template's account behind moto's server (`Bench`), the
mails stored in it, and a workload run in a fresh interpreter and checked (`Runner`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.aws.markers import MARKERS_PREFIX
from app.mail.attachments import ATTACHMENTS_PREFIX, mail_digest
from bench import mails
from localaws.account import Account

ROOT = Path(__file__).resolve().parent.parent


class BenchError(RuntimeError):
    """A run that did not do the work it was timed for: its figures would mean nothing."""


@dataclass
class Stored:
    case: mails.Case
    key: str
    boundary: str
    mail_bytes: int


# -- the local AWS ----------------------------------------------------------------------------------


class Bench:
    """The template's account behind moto's server in this process, and what the runs do to it."""

    def __init__(self, account: Account) -> None:
        self.account = account
        self.s3 = account.client("s3")
        self.incoming = account.blueprint.incoming_bucket
        self.attachments = account.blueprint.function.environment["ATTACHMENTS_BUCKET"]
        self.fallback_topic = account.blueprint.function.environment["FALLBACK_TOPIC_ARN"]

    def child_environment(self) -> dict[str, str]:
        """The parent's environment without any AWS settings, plus the functions' as Lambda sets it."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "_X_AMZN", "LAMBDA_"))}
        names = self.account.blueprint.process_environment()
        return {**{k: v for k, v in env.items() if k not in names}, **self.account.environment()}

    def buckets(self) -> dict[str, str]:
        return {"incoming_bucket": self.incoming, "attachments_bucket": self.attachments}

    def store(self, case: mails.Case, key: str) -> Stored:
        mail = mails.build(case)
        self.s3.put_object(Bucket=self.incoming, Key=key, Body=mail.raw)
        return Stored(case, key, mail.boundary, len(mail.raw))

    def copy(self, source: str, target: str) -> None:
        bucket = self.incoming
        self.s3.copy_object(Bucket=bucket, Key=target, CopySource={"Bucket": bucket, "Key": source})

    def objects(self, bucket: str, prefix: str) -> dict[str, int]:
        found: dict[str, int] = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.update({item["Key"]: item["Size"] for item in page.get("Contents", [])})
        return found

    def delete(self, bucket: str, prefix: str) -> None:
        keys = list(self.objects(bucket, prefix))
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            self.s3.delete_objects(Bucket=bucket, Delete={"Objects": batch})

    def forget(self, incoming_key: str) -> None:
        """Everything one relayed mail left behind: attachments, markers, the raw mail."""
        digest = mail_digest(incoming_key)
        self.delete(self.attachments, f"{ATTACHMENTS_PREFIX}{digest}/")
        self.delete(self.incoming, f"{MARKERS_PREFIX}{digest}/")
        self.s3.delete_object(Bucket=self.incoming, Key=incoming_key)

    def sent_count(self) -> int:
        return len(self.account.sent_mail())

    def notices(self) -> list[str]:
        """The fallback notices published so far (why a mail was not sent)."""
        return [p.message for p in self.account.published(self.fallback_topic)]


# -- runs ----------------------------------------------------------------------------------------------


def run_child(kind: str, spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.workloads", kind, json.dumps(spec)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise BenchError(f"the {kind} workload failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["log"] = done.stderr[-4000:]  # shown when a check below finds the work undone
    return result


class Runner:
    """Runs one workload on one stored mail and checks that it really did the work."""

    def __init__(self, aws: Bench, warmup: Stored) -> None:
        self.aws = aws
        self.warmup = warmup
        self.env = aws.child_environment()
        self.runs = 0

    def run(self, kind: str, stored: Stored) -> dict[str, Any]:
        self.runs += 1
        return self.limit(stored) if kind == "limit" else self.function(stored)

    def limit(self, stored: Stored) -> dict[str, Any]:
        prefix = f"bench-limit/{self.runs}"
        spec = {
            **self.aws.buckets(),
            "key": stored.key,
            "boundary": stored.boundary,
            "warmup_key": self.warmup.key,
            "warmup_boundary": self.warmup.boundary,
            "output_prefix": prefix,
        }
        try:
            result = run_child("limit", spec, self.env)
            if tuple(result["attachment_sizes"]) != stored.case.attachment_sizes:
                raise BenchError(f"the limit decoded {result['attachment_sizes']} for {stored.case.name}")
        finally:
            self.aws.delete(self.aws.attachments, prefix + "/")
        return result

    def function(self, stored: Stored) -> dict[str, Any]:
        key = f"{stored.key}/run-{self.runs}"
        warmup_key = f"{self.warmup.key}/run-{self.runs}"
        self.aws.copy(stored.key, key)
        self.aws.copy(self.warmup.key, warmup_key)
        sent_before = self.aws.sent_count()
        spec = {**self.aws.buckets(), "key": key, "warmup_key": warmup_key}
        try:
            result = run_child("function", spec, self.env)
            self._check_function(stored, key, self.aws.sent_count() - sent_before, result)
        finally:
            for incoming in (key, warmup_key):
                self.aws.forget(incoming)
        return result

    def _check_function(self, stored: Stored, key: str, sent: int, result: dict[str, Any]) -> None:
        if result["batch_item_failures"]:
            raise BenchError(f"the function asked to retry {key}; its log:\n{result['log']}")
        if sent != 2:
            raise BenchError(
                f"SES got {sent} mails, not the warm-up and the measured one; fallback notices: "
                f"{self.aws.notices()[-2:]}; log:\n{result['log']}"
            )
        objects = self.aws.objects(self.aws.attachments, f"{ATTACHMENTS_PREFIX}{mail_digest(key)}/")
        sizes = sorted(size for name, size in objects.items() if not name.endswith("/manifest.json"))
        if sizes != sorted(stored.case.attachment_sizes):
            raise BenchError(f"the function stored attachments of {sizes} bytes for {stored.case.name}")
