"""The platform's documented alerting forms, turned into interlock's channel objects.

``email_notifications`` is a recipient list: the SMTP server comes from today's
``email`` object, else from the environment (``SMTP_HOST``, ``SMTP_PORT``, ``SMTP_USER``,
``SMTP_FROM``, ``SMTP_SECURITY``; the password is ``${credential:smtp_password}``).
``slack_webhook`` is the webhook URL; a literal one works but is warned about.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from interlock import secrets

_WHERE = "$.performance_monitoring.alerting"


def documented_forms(
    alerting: Mapping[str, Any], env: Mapping[str, str], problems: list[str], warnings: list[str]
) -> dict[str, Any]:
    """``alerting`` with ``email_notifications`` / ``slack_webhook`` read into channels."""
    out = dict(alerting)
    recipients = alerting.get("email_notifications")
    if isinstance(recipients, list) and recipients:
        if isinstance(alerting.get("email"), dict):
            out["email"] = {**alerting["email"], "to": list(recipients)}
        else:
            out["email"] = _email_from_env(recipients, env, problems)
    webhook = alerting.get("slack_webhook")
    if isinstance(webhook, str) and not isinstance(alerting.get("slack"), dict):
        if not re.fullmatch(r"\$\{[^}]+\}", webhook):
            warnings.append(
                f"{_WHERE}.slack_webhook: the webhook URL is a secret; keep it out of the "
                "config file: write '${credential:slack_webhook_url}' and give the URL as "
                "that credential (LoadCredential=slack_webhook_url:/path/to/file)"
            )
            secrets.remember(webhook)  # masked wherever it might be echoed, like a credential
        out["literal_slack_webhook"] = not webhook.startswith("${")
        out["slack"] = {"webhook_url": webhook}
    return out


def _email_from_env(
    recipients: list[Any], env: Mapping[str, str], problems: list[str]
) -> dict[str, Any]:
    to = [r for r in recipients if isinstance(r, str)]
    host = env.get("SMTP_HOST", "")
    if not host:
        reason = "SMTP_HOST is not set; set SMTP_HOST (and SMTP_PORT, SMTP_USER) for the service"
        return {"enabled": False, "disabled_reason": reason, "host": "", "from": "", "to": to}
    email: dict[str, Any] = {"host": host, "to": to}
    port_text = env.get("SMTP_PORT", "")
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            problems.append(
                f"{_WHERE}.email_notifications: SMTP_PORT {port_text!r} is not a port; "
                "set it to a number from 1 to 65535"
            )
        else:
            email["port"] = int(port_text)
    security = env.get("SMTP_SECURITY") or {465: "tls", 25: "none"}.get(
        email.get("port", 587), "starttls"
    )
    if security not in ("starttls", "tls", "none"):
        problems.append(
            f"{_WHERE}.email_notifications: SMTP_SECURITY {security!r} is not one of "
            "starttls, tls, none"
        )
        security = "starttls"
    email["security"] = security
    if env.get("SMTP_USER"):
        email["username"] = env["SMTP_USER"]
        email["password"] = "${credential:smtp_password}"
    email["from"] = env.get("SMTP_FROM") or env.get("SMTP_USER") or f"interlock@{host}"
    return email
