"""`python -m relayctl`, the same as the `relayctl` console script."""

import sys

from relayctl.cli import main

sys.exit(main())
