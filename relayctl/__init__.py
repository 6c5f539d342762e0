"""relayctl: the operator's command line for a deployed relay (revoke links, redrive, status, activate).

It runs on an operator's machine or in CI with the usual AWS credential chain; it is not part of the
function's image.
"""
