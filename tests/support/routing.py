"""A recipients document with two groups and a camera's route, and the relay's own addresses it names:
what the routing and screening tests read."""

from __future__ import annotations

import json

from app.routing import document
from app.routing.document import Directory

RELAY = "inbox@relay.example.com"
CAMERA = "cam-lobby-8f2k@relay.example.com"
DOCUMENT = {
    "groups": {
        "Boiler-Oncall": ["Alice@Example.com", "bob@example.org"],
        "lobby-security": ["guard-desk@example.com", "alice@example.com"],
    },
    "routes": {CAMERA: ["lobby-security", "yard-lead@example.com"]},
}


def directory(data: object = DOCUMENT) -> Directory:
    return document.parse(json.dumps(data).encode())
