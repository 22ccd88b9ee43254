"""email_notifications through a whole daemon run: a real ``interlock run --once`` process,
SMTP_HOST/SMTP_PORT from its environment, a failing component, the mail at the recipients."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from tests.notify_servers import SmtpSink, smtp

__all__ = ["smtp"]  # fixture

pytestmark = pytest.mark.timeout(90)

REPO = Path(__file__).resolve().parent.parent
RECIPIENTS = ["admin@example.com", "ops@example.com"]


def platform_config(tmp_path: Path) -> Path:
    """The documented alerting block, and a schedule whose source refuses connections."""
    doc = {
        "components": {
            "gtfs_schedule": {
                "frequency": "daily",
                "retries": 0,
                "settings": {
                    "source": {"url": "http://127.0.0.1:9/gtfs.zip"},
                    "allow_private_addresses": True,
                },
            }
        },
        "runtime_settings": {
            "state_dir": str(tmp_path / "state"),
            "data_dir": str(tmp_path / "data"),
        },
        "performance_monitoring": {
            "alerting": {"enabled": True, "email_notifications": RECIPIENTS}
        },
    }
    path = tmp_path / "orchestration.json"
    path.write_text(json.dumps(doc))
    return path


async def test_a_failing_run_mails_exactly_the_listed_recipients(
    tmp_path: Path, smtp: SmtpSink
) -> None:
    """`interlock run --once` fails gtfs_schedule; its alert and the run's summary reach
    both recipients, and no one else."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("INTERLOCK_CONFIG", "CREDENTIALS_DIRECTORY", "PYTHONPATH")
        and not k.startswith("SMTP_")
    }
    env |= {
        "PYTHONPATH": str(REPO),
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "SMTP_SECURITY": "none",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "interlock.cli",
        "run",
        "--once",
        "--config",
        str(platform_config(tmp_path)),
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 1, err.decode()[-2000:]
    # The component's failure and the failed run's summary; sent before the process ended.
    mails = await smtp.wait(2, limit_s=10)
    assert [e.rcpt_tos for e in smtp.envelopes] == [RECIPIENTS, RECIPIENTS]
    for mail in mails:
        assert sorted(a.strip() for a in mail["To"].split(",")) == sorted(RECIPIENTS)
        assert mail["From"] == "interlock@127.0.0.1"
    subjects = sorted(" ".join(m["Subject"].split()) for m in mails)
    assert subjects[0].startswith("[interlock] gtfs_schedule failed: GET http://127.0.0.1:9/")
    assert subjects[1].startswith("[interlock] run ") and subjects[1].endswith(" failed")
