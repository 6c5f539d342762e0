"""The image's contents, proven without a Docker engine by replaying the Dockerfile.

FROM/COPY/RUN/CMD are replayed into a temporary task root: RUN lines run verbatim under `sh` with
LAMBDA_TASK_ROOT pointing there, `pip` resolving to this interpreter's pip (from a local wheelhouse
of the locked files, `make wheels`, so no network) and `python3.12` to the bare 3.12 interpreter.
Then the task root is frozen and the handler imported in an isolated interpreter that sees only it
and the standard library: the cold start must be silent (no ply table regeneration warnings) and
write nothing (the image is read-only). The same replay with one file that is not the one locked
(a changed wheel, or a changed hash in the lock) must fail the build.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import ROOT
from tests.support.cloudformation import download_function, load_template
from tools.lock import parse

pytestmark = pytest.mark.image

WHEELHOUSE = Path(os.environ.get("IMAGE_WHEELHOUSE", ROOT / ".venv-wheels"))
BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (word.upper(), rest.strip())
        for word, _, rest in (line.partition(" ") for line in lines if line and not line.startswith("#"))
    ]


def ignored(relative: str, patterns: list[str]) -> bool:
    """.dockerignore semantics for the patterns used: last match wins, `!` re-includes, `**` spans dirs."""
    verdict = False
    parts = relative.split("/")
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw.lstrip("!").strip("/")
        regex = (
            re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        )
        if any(re.fullmatch(regex, "/".join(parts[: i + 1])) for i in range(len(parts))):
            verdict = not negate
    return verdict


class ReplayError(AssertionError):
    """A RUN line failed."""


def copy_context(context: Path, source: str, destination: Path, patterns: list[str]) -> None:
    src = context / source
    for path in sorted(src.rglob("*")) if src.is_dir() else [src]:
        relative = path.relative_to(context).as_posix()
        if path.is_file() and not ignored(relative, patterns):
            target = destination / path.relative_to(src) if src.is_dir() else destination
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def shims(directory: Path) -> Path:
    directory.mkdir()
    for name, command in {
        "pip": f"{shlex.quote(sys.executable)} -m pip",
        "python3.12": f"{shlex.quote(BASE_PYTHON)} -S",
    }.items():
        shim = directory / name
        shim.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
        shim.chmod(0o755)
    return directory


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*")}


def build(tmp_path: Path, context: Path = ROOT, wheelhouse: Path = WHEELHOUSE) -> tuple[Path, str]:
    """Replay the Dockerfile with `context` as the build context and pip's files from `wheelhouse`."""
    task_root = tmp_path / "var-task"
    task_root.mkdir()
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    env = {
        "PATH": f"{shims(tmp_path / 'bin')}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "LAMBDA_TASK_ROOT": str(task_root),
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheelhouse),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    handler = ""
    for instruction, arguments in instructions(ROOT / "Dockerfile"):
        expanded = arguments.replace("${LAMBDA_TASK_ROOT}", str(task_root))
        if instruction == "FROM":
            assert arguments == "public.ecr.aws/lambda/python:3.12"
        elif instruction == "COPY":
            source, destination = shlex.split(expanded)
            copy_context(context, source, Path(destination), patterns)
        elif instruction == "RUN":
            done = subprocess.run(
                ["sh", "-ec", arguments], cwd=task_root, env=env, capture_output=True, text=True, check=False
            )
            if done.returncode != 0:
                raise ReplayError(f"RUN {arguments}\n{done.stdout}\n{done.stderr}")
        elif instruction == "CMD":
            (handler,) = __import__("json").loads(arguments)
        else:
            pytest.fail(f"the replay does not know Dockerfile instruction {instruction}")
    return task_root, handler


@pytest.mark.skipif(not WHEELHOUSE.is_dir(), reason=f"no wheelhouse at {WHEELHOUSE}: run `make wheels`")
def test_image_imports_the_handler_silently_from_a_read_only_task_root(tmp_path: Path) -> None:
    task_root, handler = build(tmp_path)
    module, _, function = handler.rpartition(".")
    (command,) = download_function(load_template())[1]["Properties"]["ImageConfig"]["Command"]
    download_module, _, download_function_name = command.rpartition(".")  # the same image, its own handler
    assert (task_root / "flanker").is_dir()
    assert (task_root / "app" / "handler.py").is_file()
    subprocess.run(["chmod", "-R", "a-w", str(task_root)], check=True)
    before = snapshot(task_root)
    probe = (
        "import importlib, sys\n"
        f"sys.path[:0] = [{str(task_root)!r}]\n"
        f"handler = getattr(importlib.import_module({module!r}), {function!r})\n"
        "assert callable(handler)\n"
        f"download = getattr(importlib.import_module({download_module!r}), {download_function_name!r})\n"
        "assert callable(download)\n"
        "from flanker.addresslib import address\n"
        "assert address.parse('Sensor <cam-1@plant.example.org>').address == 'cam-1@plant.example.org'\n"
        "assert 'PIL' not in sys.modules  # loaded on a mail's first image, not at the cold start\n"
        "from app import previews\n"  # Pillow's wheel and its bundled codecs work from the task root
        f"preview = previews.make({_tiny_jpeg()!r})\n"
        "assert isinstance(preview, previews.Preview) and preview.width == 64, preview\n"
    )
    try:
        done = subprocess.run(
            [BASE_PYTHON, "-I", "-S", "-c", probe],
            cwd=tmp_path,
            env={"PATH": os.environ["PATH"], "AWS_DEFAULT_REGION": "eu-west-1"},
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""  # no "Symbol ... is unreachable", no SyntaxWarning from a recompile
        assert snapshot(task_root) == before  # the cold start wrote nothing (as root, a-w does not stop it)
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(task_root)], check=True)


def _tiny_jpeg() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, "JPEG")
    return out.getvalue()


def test_the_image_installs_the_lock_with_hashes_required_and_nothing_else() -> None:
    runs = [arguments for instruction, arguments in instructions(ROOT / "Dockerfile") if instruction == "RUN"]
    installs = [part for part in " ".join(runs).split("&&") if "pip install" in part]
    assert installs
    for install in installs:
        words = shlex.split(install)
        assert {"--require-hashes", "--no-deps"} <= set(words), install
        (requirement_file,) = (words[i + 1] for i, word in enumerate(words) if word == "-r")
        assert requirement_file.endswith(".lock"), install
    assert any(w.endswith("app/requirements.lock") for w in shlex.split(" ".join(installs)))


def _tamper_wheel(context: Path, wheelhouse: Path) -> str:
    """A wheelhouse where one locked wheel is not the file that was locked (a byte appended)."""
    _, entries = parse((ROOT / "app" / "requirements.lock").read_text())
    victim = next(e for e in entries if e.filename.endswith(".whl"))
    with (wheelhouse / victim.filename).open("ab") as wheel:
        wheel.write(b"\0")
    return victim.name


def _tamper_lock(context: Path, wheelhouse: Path) -> str:
    """A lock where one hash is not that of the file in the wheelhouse (its last digit changed)."""
    lock = context / "app" / "requirements.lock"
    _, entries = parse(lock.read_text())
    victim = entries[-1]
    changed = victim.sha256[:-1] + ("0" if victim.sha256[-1] != "0" else "1")
    lock.write_text(lock.read_text().replace(victim.sha256, changed))
    return victim.name


@pytest.mark.skipif(not WHEELHOUSE.is_dir(), reason=f"no wheelhouse at {WHEELHOUSE}: run `make wheels`")
@pytest.mark.parametrize("tamper", [_tamper_wheel, _tamper_lock], ids=["changed-wheel", "changed-hash"])
def test_the_build_fails_on_a_file_whose_hash_differs_from_the_lock(
    tmp_path: Path, tamper: Callable[[Path, Path], str]
) -> None:
    context, wheelhouse = tmp_path / "context", tmp_path / "wheelhouse"
    shutil.copytree(ROOT / "app", context / "app", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / ".dockerignore", context / ".dockerignore")
    shutil.copytree(WHEELHOUSE, wheelhouse)
    victim = tamper(context, wheelhouse)
    (tmp_path / "build").mkdir()
    with pytest.raises(ReplayError, match="DO NOT MATCH THE HASHES") as failed:
        build(tmp_path / "build", context=context, wheelhouse=wheelhouse)
    assert victim.lower() in str(failed.value).lower()
    assert not (tmp_path / "build" / "var-task" / "app" / "handler.py").exists()  # nothing after the RUN


def test_dockerignore_sends_only_the_function_to_the_build(tmp_path: Path) -> None:
    patterns = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and line[0] != "#"]
    assert not ignored("app/handler.py", patterns)
    assert not ignored("app/requirements.lock", patterns)
    assert not ignored("app/build-requirements.lock", patterns)
    for path in (
        ".venv/bin/python",
        "tests/conftest.py",
        "app/__pycache__/handler.cpython-312.pyc",
        "events/env.json",
    ):
        assert ignored(path, patterns), path
    assert stat.S_ISREG((ROOT / "Dockerfile").stat().st_mode)
