"""What the SAM CLI does with the template: `sam build` builds the function image once for both image
functions, and `sam deploy` names the stack of their repositories as relayctl teardown expects.

The SAM CLI puts functions into one build when their build definitions are equal: whole `Metadata`
(checkov's comments included), package type, architecture, code and image location
(samcli/lib/build/build_graph.py, `FunctionBuildDefinition.__eq__`). This asks the SAM CLI of
`make template-check` (`.venv-sam`, or the interpreter beside `$SAM_CLI`) for the build graph it would
use for template.yaml, with the same collection of buildable functions as `sam build`
(`BuildContext.collect_all_build_resources`); nothing is built, no Docker is needed.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support import ROOT, TEMPLATE
from tests.support.cloudformation import image_functions, load_template

GRAPH = """
import json, os, sys, tempfile
from samcli.lib.build.app_builder import ApplicationBuilder
from samcli.lib.providers.provider import ResourcesToBuildCollector
from samcli.lib.providers.sam_function_provider import SamFunctionProvider
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

stacks = SamLocalStackProvider.get_stacks(sys.argv[1])[0]
functions = SamFunctionProvider(stacks, ignore_code_extraction_warnings=True).get_all()
collected = ResourcesToBuildCollector()
collected.add_functions([f for f in functions if f.function_build_info.is_buildable()])
work = tempfile.mkdtemp()
builder = ApplicationBuilder(collected, os.path.join(work, "build"), os.getcwd(), os.path.join(work, "cache"))
graph = builder._get_build_graph()
print(json.dumps([[d.packagetype, [f.name for f in d.functions]] for d in graph.get_function_build_definitions()]))
"""


def _sam_python() -> Path:
    for candidate in (os.environ.get("SAM_CLI", ""), str(ROOT / ".venv-sam" / "bin" / "sam")):
        if candidate and Path(candidate).is_file():
            return Path(candidate).parent / "python"
    pytest.skip("no SAM CLI: run `make template-check` (it installs .venv-sam) or set SAM_CLI")


def test_both_image_functions_are_one_build() -> None:
    done = subprocess.run(
        [str(_sam_python()), "-c", GRAPH, str(TEMPLATE)],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SAM_CLI_TELEMETRY": "0"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    builds = json.loads(done.stdout.strip().splitlines()[-1])
    images = [sorted(names) for kind, names in builds if kind == "Image"]
    assert images == [sorted(image_functions(load_template()))]


COMPANION = """
import json, sys
from samcli.lib.bootstrap.companion_stack.data_types import CompanionStack
print(json.dumps({name: CompanionStack(name).stack_name for name in sys.argv[1:]}))
"""


def test_teardown_names_the_image_repositories_stack_as_sam_deploy_does() -> None:
    from relayctl.images import companion_name

    names = ["iot-mail-relay", "Relay-Prod-2", "r" * 128]
    done = subprocess.run(
        [str(_sam_python()), "-c", COMPANION, *names],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SAM_CLI_TELEMETRY": "0"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {name: companion_name(name) for name in names}
