"""Project tooling that is neither the function nor relayctl: not installed, not in the image."""
