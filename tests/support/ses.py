"""SES's own block atop a received mail, as SES stores it: Return-Path and Received, the verdicts, SPF and
`Authentication-Results`, then X-SES-RECEIPT and its DKIM signature. The sender's headers follow below."""

from __future__ import annotations

SES_AR = (
    "amazonses.com;\r\n spf=pass (spfCheck: domain of plant.example.com designates 198.51.100.23 as permitted"
    " sender) client-ip=198.51.100.23; envelope-from=sensor-17@plant.example.com;"
    " helo=mail-out.plant.example.com;\r\n dkim=pass header.i=@plant.example.com;\r\n"
    " dmarc=pass header.from=plant.example.com;"
)
SES_BLOCK = [
    ("Return-Path", "<sensor-17@plant.example.com>"),
    (
        "Received",
        "from mail-out.plant.example.com (mail-out.plant.example.com [198.51.100.23]) by"
        " inbound-smtp.eu-west-1.amazonaws.com with SMTP id 4q2k1v0s9tt0e5l6 for inbox-7f3k9q@relay.example.com;"
        " Sun, 29 Nov 2026 10:00:00 +0000 (UTC)",
    ),
    ("X-SES-Spam-Verdict", "PASS"),
    ("X-SES-Virus-Verdict", "FAIL"),
    (
        "Received-SPF",
        "pass (spfCheck: ...) client-ip=198.51.100.23; envelope-from=sensor-17@plant.example.com;",
    ),
    ("Authentication-Results", SES_AR),
    ("X-SES-RECEIPT", "AEFBQUFB"),
    ("X-SES-DKIM-SIGNATURE", "a=rsa-sha256; ..."),
]
