"""`make lock` (tools/lock.py generate), run offline: with the wheelhouse of the locked files as its
only index, it must write exactly the committed locks. This exercises the generator end to end (pip's
resolution, the Lambda-platform file choice, the hashes) and shows the committed locks are its
untouched output; against the real index the same code differs only where newer releases appeared."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools import lock

pytestmark = pytest.mark.integration

WHEELHOUSE = Path(os.environ.get("IMAGE_WHEELHOUSE", lock.ROOT / ".venv-wheels"))


@pytest.mark.skipif(not WHEELHOUSE.is_dir(), reason=f"no wheelhouse at {WHEELHOUSE}: run `make wheels`")
def test_make_lock_from_the_locked_files_reproduces_the_committed_locks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(WHEELHOUSE))
    written = lock.generate(tmp_path)
    assert set(written) == {lock.LOCK, lock.BUILD_LOCK, lock.RELAYCTL_LOCK}
    for committed, text in written.items():
        assert (tmp_path / committed.relative_to(lock.ROOT)).read_text() == text
        assert text == committed.read_text(), f"{committed} is not what `make lock` writes"
