"""SAM's image repositories for a stack: its companion stack, and emptying the repositories it holds.

With `resolve_image_repos`, `sam deploy` keeps one ECR repository per image function (here three) in a
stack of its own, named `<stack name, at most 104 characters>-<first 8 hex digits of the stack name's
MD5>-CompanionStack` (aws-sam-cli, samcli/lib/bootstrap/companion_stack/data_types.py) and described
as "AWS SAM CLI Managed ECR Repo Stack". `sam delete` offers to remove it, but it looks for it only
after finding the main stack, so once that is gone nothing removes it. CloudFormation deletes a
repository only when it is empty (the companion's repositories do not set `EmptyOnDelete`), so the
images go first; an image index is deleted before the images it lists, hence the rounds in `empty`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from app.aws import error_codes
from relayctl.aws import Aws, CommandError, describe
from relayctl.resources import describe_stack, live_resources

DESCRIPTION = "AWS SAM CLI Managed ECR Repo Stack"
REPOSITORY = "AWS::ECR::Repository"
PAGE = 100  # BatchDeleteImage takes at most 100 image ids per request
ROUNDS = 5  # an image index goes in one round, the images it listed in the next
_GONE_REPOSITORY = {"RepositoryNotFoundException"}


@dataclass
class Companion:
    stack: dict[str, Any]
    repositories: dict[str, int] = field(default_factory=dict)  # name -> images it holds

    @property
    def name(self) -> str:
        return str(self.stack["StackName"])

    @property
    def images(self) -> int:
        return sum(self.repositories.values())


def companion_name(stack_name: str) -> str:
    """The name `sam deploy` gives the companion stack of `stack_name`."""
    digest = hashlib.md5(stack_name.encode("utf-8"), usedforsecurity=False).hexdigest()
    return f"{stack_name[:104]}-{digest[:8]}-CompanionStack"


def find(aws: Aws, stack_name: str) -> Companion | None:
    """The stack's companion with its repositories and their image counts, or None. A stack of that
    name that SAM did not make (another description) is refused rather than deleted."""
    stack = describe_stack(aws, companion_name(stack_name))
    if stack is None or stack.get("StackStatus") == "DELETE_COMPLETE":
        return None
    if stack.get("Description") != DESCRIPTION:
        raise CommandError(
            f"stack {stack['StackName']} has the name of the stack's image repositories but is not"
            f" described as {DESCRIPTION!r}: not touching it"
        )
    companion = Companion(stack)
    ecr = aws.client("ecr")
    for resource in live_resources(aws, stack):
        if resource["ResourceType"] == REPOSITORY:
            repository = resource["PhysicalResourceId"]
            companion.repositories[repository] = len(_image_ids(ecr, repository))
    return companion


def empty(aws: Aws, companion: Companion) -> dict[str, int]:
    """Delete every image in the companion's repositories; the number removed per repository."""
    ecr = aws.client("ecr")
    return {repository: _empty(ecr, repository) for repository in companion.repositories}


def _empty(ecr: Any, repository: str) -> int:
    removed = 0
    for _ in range(ROUNDS):
        ids = _image_ids(ecr, repository)
        if not ids:
            return removed
        failures = []
        for start in range(0, len(ids), PAGE):
            chunk = ids[start : start + PAGE]
            try:
                answer = ecr.batch_delete_image(repositoryName=repository, imageIds=chunk)
            except ClientError as e:
                raise CommandError(
                    f"emptying image repository {repository}: {describe(e)} ({removed} removed so far)"
                ) from e
            failed = [f for f in answer.get("failures", []) if f.get("failureCode") != "ImageNotFound"]
            removed += len(chunk) - len(failed)  # images, by digest (the answer lists each tag)
            failures += failed
        if failures and len(failures) == len(ids):  # nothing went this round: it never will
            first = failures[0]
            raise CommandError(
                f"emptying image repository {repository}: {len(failures)} image(s) not deleted, e.g."
                f" {first.get('failureCode')}: {first.get('failureReason', '')}".rstrip()
            )
    if _image_ids(ecr, repository):
        raise CommandError(f"emptying image repository {repository}: images keep appearing; run again")
    return removed


def _image_ids(ecr: Any, repository: str) -> list[dict[str, str]]:
    """Every image of the repository by digest (a tagged image once, however many tags it has)."""
    try:
        digests = {
            image["imageDigest"]
            for page in ecr.get_paginator("list_images").paginate(repositoryName=repository)
            for image in page.get("imageIds", [])
            if image.get("imageDigest")
        }
    except ClientError as e:
        if error_codes.code(e) in _GONE_REPOSITORY:
            return []
        raise CommandError(f"listing image repository {repository}: {describe(e)}") from e
    return [{"imageDigest": digest} for digest in sorted(digests)]
