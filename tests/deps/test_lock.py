"""The drift check (tools/lock.py, `make lock-check`): the locks agree with app/requirements.txt,
pyproject.toml and the Lambda platform, and each kind of drift is caught. Offline: the checks read
the committed files (and, where `make wheels` made it, the wheelhouse of the locked files)."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pytest
from packaging.tags import Tag

from tools import lock

pytestmark = pytest.mark.unit

ROOT = lock.ROOT
WHEELHOUSE = Path(os.environ.get("IMAGE_WHEELHOUSE", ROOT / ".venv-wheels"))


def texts() -> dict[str, str]:
    return {
        "requirements_text": lock.REQUIREMENTS.read_text(),
        "lock_text": lock.LOCK.read_text(),
        "build_lock_text": lock.BUILD_LOCK.read_text(),
        "relayctl_lock_text": lock.RELAYCTL_LOCK.read_text(),
        "pyproject_text": lock.PYPROJECT.read_text(),
    }


def entries() -> list[lock.Locked]:
    return lock.parse(lock.LOCK.read_text())[1]


def test_the_committed_locks_agree_with_their_inputs() -> None:
    assert lock.check(**texts()) == []
    assert lock.main(["check"]) == 0


def test_the_lock_pins_every_package_flanker_pulls_in_each_with_one_hash() -> None:
    names = {e.key for e in entries()}
    assert {"boto3", "botocore", "flanker", "aws-xray-sdk"} <= names
    assert {"cryptography", "chardet", "regex", "webob", "tld", "ply", "wrapt", "cffi"} <= names
    text = lock.LOCK.read_text()
    requirement_lines = [line for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    assert len(requirement_lines) == len(entries()) == text.count("--hash=sha256:")
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+==\S+ \\", line) for line in requirement_lines)


def test_changing_a_pin_without_make_lock_fails_the_check() -> None:
    changed = texts()
    changed["requirements_text"] = changed["requirements_text"].replace("boto3==1.44.8", "boto3==1.44.9")
    problems = lock.check(**changed)
    assert any("run `make lock`" in p for p in problems)
    assert "app/requirements.txt asks for boto3==1.44.9, app/requirements.lock pins boto3==1.44.8" in problems


def test_adding_a_requirement_without_make_lock_fails_the_check() -> None:
    changed = texts()
    changed["requirements_text"] += "requests==2.32.3\n"
    problems = lock.check(**changed)
    assert "app/requirements.txt asks for requests==2.32.3, app/requirements.lock pins nothing" in problems


def test_comments_and_spacing_in_the_requirements_are_not_drift() -> None:
    changed = texts()
    changed["requirements_text"] = "# reworded\n\n" + changed["requirements_text"].replace("==", " == ")
    assert lock.check(**changed) == []


def test_a_lock_without_its_input_digest_fails_the_check() -> None:
    changed = texts()
    changed["lock_text"] = re.sub(r"(?m)^# input: .*\n", "", changed["lock_text"])
    assert any("run `make lock`" in p for p in lock.check(**changed))


@pytest.mark.parametrize(
    "edit",
    [
        lambda text: text + "requests==2.32.3 --hash=sha256:" + "0" * 64 + "\n",  # a package added by hand
        lambda text: text.replace(
            "--hash=sha256:", "--hash=sha256:" + "0" * 64 + " \\\n    --hash=sha256:", 1
        ),
    ],
    ids=["hand-added-package", "second-hash"],
)
def test_lines_pip_would_read_but_make_lock_did_not_write_fail_the_check(edit: Callable[[str], str]) -> None:
    changed = texts()
    changed["lock_text"] = edit(changed["lock_text"])
    problems = lock.check(**changed)
    assert any(p.startswith("app/requirements.lock: not written by `make lock`") for p in problems), problems


def test_lambda_accepts_glibc_2_34_and_older_for_cpython_3_12_only() -> None:
    tags = lock.lambda_tags()
    for accepted in (
        "cp312-cp312-manylinux_2_34_x86_64",
        "cp311-abi3-manylinux_2_34_x86_64",
        "cp312-cp312-manylinux2014_x86_64",
        "cp312-cp312-manylinux1_x86_64",
        "py3-none-any",
    ):
        assert Tag(*accepted.split("-")) in tags, accepted
    for refused in (
        "cp312-cp312-manylinux_2_35_x86_64",  # newer glibc than Amazon Linux 2023's
        "cp312-cp312-manylinux_2_28_aarch64",  # the function runs on x86_64
        "cp312-cp312-musllinux_1_2_x86_64",
        "cp313-cp313-manylinux_2_17_x86_64",
        "cp312-cp312-macosx_11_0_x86_64",
        "cp312-cp312-linux_x86_64",  # not portable: built on one machine
    ):
        assert Tag(*refused.split("-")) not in tags, refused


@pytest.mark.parametrize(
    "filename",
    [
        "cryptography-50.0.2-cp311-abi3-manylinux_2_39_x86_64.whl",
        "cryptography-50.0.2-cp311-abi3-manylinux_2_34_aarch64.whl",
        "cryptography-50.0.2-cp311-abi3-musllinux_1_2_x86_64.whl",
        "cryptography-50.0.2-cp311-abi3-macosx_10_9_universal2.whl",
    ],
)
def test_a_wheel_that_does_not_install_on_lambda_fails_the_check(filename: str) -> None:
    changed = texts()
    (original,) = (e.filename for e in entries() if e.key == "cryptography")
    changed["lock_text"] = changed["lock_text"].replace(original, filename)
    (problem,) = lock.check(**changed)
    assert problem.startswith(f"cryptography: {filename} (")
    assert problem.endswith(f"does not install on {lock.PLATFORM}")


def test_an_sdist_the_image_would_have_to_build_fails_the_check_unless_allowed() -> None:
    changed = texts()
    (original,) = (e.filename for e in entries() if e.key == "regex")
    changed["lock_text"] = changed["lock_text"].replace(original, "regex-2026.11.19.tar.gz")
    (problem,) = lock.check(**changed)
    assert "regex: the lock installs its sdist regex-2026.11.19.tar.gz" in problem
    assert "flanker" in lock.BUILT_FROM_SOURCE  # the one pure-Python package that publishes no wheel


def test_a_file_of_another_version_fails_the_check() -> None:
    changed = texts()
    changed["lock_text"] = changed["lock_text"].replace(
        "tld-0.13.2-py2.py3-none-any", "tld-0.13.1-py2.py3-none-any"
    )
    assert lock.check(**changed) == ["tld==0.13.2: its file is tld-0.13.1-py2.py3-none-any.whl"]


def test_pyproject_dependencies_must_admit_the_locked_versions() -> None:
    changed = texts()
    changed["pyproject_text"] = changed["pyproject_text"].replace('"boto3>=1.44.8,<2"', '"boto3>=1.45"')
    problems = lock.check(**changed)
    assert "pyproject.toml asks for boto3>=1.45, app/requirements.lock pins boto3==1.44.8" in problems


def test_relayctl_lock_is_the_subset_its_dependencies_pull_in() -> None:
    relayctl = {e.key for e in lock.parse(lock.RELAYCTL_LOCK.read_text())[1]}
    assert relayctl == {"boto3", "botocore", "jmespath", "s3transfer", "python-dateutil", "six", "urllib3"}
    by_name = {e.key: e for e in entries()}
    for entry in lock.parse(lock.RELAYCTL_LOCK.read_text())[1]:
        assert entry == by_name[entry.key]  # the very files the function's lock pins
    changed = texts()
    changed["pyproject_text"] = changed["pyproject_text"].replace(
        '"botocore>=1.44.8,<2",', '"botocore>=1.44.8,<2",\n    "idna>=3",'
    )
    problems = lock.check(**changed)
    assert any(p.startswith("relayctl/requirements.lock is not the subset") for p in problems)


def test_the_build_lock_holds_the_wheels_the_sdists_need() -> None:
    build = lock.parse(lock.BUILD_LOCK.read_text())[1]
    assert [e.key for e in build] == ["setuptools"]
    assert all(e.filename.endswith("-py3-none-any.whl") for e in build)


def test_the_project_venv_runs_on_the_locked_versions() -> None:
    """.venv installs the lock (Makefile): the tests run on the versions the image ships."""
    for entry in entries():
        assert metadata.version(entry.name) == entry.version, entry.name


@pytest.mark.skipif(not WHEELHOUSE.is_dir(), reason=f"no wheelhouse at {WHEELHOUSE}: run `make wheels`")
def test_each_locked_file_is_the_one_named_with_the_hash_locked() -> None:
    """The wheelhouse holds what pip downloaded for the Lambda platform: the file names the lock
    records are those files, and their hashes are the lock's."""
    for entry in entries() + lock.parse(lock.BUILD_LOCK.read_text())[1]:
        path = WHEELHOUSE / entry.filename
        assert path.is_file(), entry.filename
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry.sha256, entry.filename


def test_the_sbom_lists_every_locked_package_with_its_hash_and_dependencies(tmp_path: Path) -> None:
    output = tmp_path / "sbom.cdx.json"
    assert lock.main(["sbom", "--output", str(output)]) == 0
    document = json.loads(output.read_text())
    assert document["bomFormat"] == "CycloneDX"
    assert "serialNumber" not in document  # reproducible: the same lock gives the same document
    assert "timestamp" not in document["metadata"]
    components = {c["name"].lower(): c for c in document["components"]}  # type: ignore[attr-defined]
    for entry in entries():
        component = components[entry.name.lower()]
        assert component["version"] == entry.version
        assert component["purl"] == f"pkg:pypi/{entry.key}@{entry.version}"
        hashes = [h["content"] for ref in component["externalReferences"] for h in ref.get("hashes", [])]
        assert hashes == [entry.sha256]
    graph = {d["ref"]: set(d["dependsOn"]) for d in document["dependencies"]}  # type: ignore[attr-defined]
    ref = {name: c["bom-ref"] for name, c in components.items()}
    assert ref["cryptography"] in graph[ref["flanker"]]
    assert ref["botocore"] in graph[ref["boto3"]]
    root = document["metadata"]["component"]["bom-ref"]  # type: ignore[index]
    direct = ("boto3", "botocore", "flanker", "aws-xray-sdk", "tld", "pillow")
    assert graph[root] == {ref[name] for name in direct}
