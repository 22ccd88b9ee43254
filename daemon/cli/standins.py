"""``interlock standins``: every stand-in source on 127.0.0.1, and a config for ``serve``.

Writes a copy of ``config/demo.json`` pointing at the stand-ins (state, data and the admin
socket beside it), prints the URLs, the config's path and the stand-in credentials to
export, then serves until SIGINT or SIGTERM: ``interlock serve --config <that path>`` in
another terminal runs the daemon against them. The credentials are the stand-ins' own,
published in their source; no real key is involved and nothing leaves this machine.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from interlock.cli.common import EXIT_CONFIG, EXIT_OK, add_log_options

#: The placeholder config/demo.json uses for the stand-ins' base URL.
URL_PLACEHOLDER = "${INTERLOCK_STANDIN_URL}"
CONFIG_NAME = "orchestration.json"


def add_parsers(sub: Any) -> None:
    """Add ``standins`` to the CLI's subparsers."""
    text = "serve every stand-in source on 127.0.0.1 and write a config for `serve` (Ctrl-C stops)"
    p = sub.add_parser("standins", help=text, description=text)
    p.add_argument(
        "--port-base",
        type=int,
        default=0,
        metavar="N",
        help="TCP port of the stand-in server; every source is a path on it (default 0: a free "
        "port)",
    )
    p.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="write the config, and let the daemon keep state and data, here (default: a new "
        "folder under /tmp, kept afterwards)",
    )
    add_log_options(p, level="warning", log_format="console")


def credentials() -> dict[str, str]:
    """The environment ``config/demo.json``'s placeholders take: the stand-ins' own keys."""
    from interlock.components.standins.gtfs_realtime import STANDIN_API_KEY
    from interlock.components.standins.ptv import DEMO_API_KEY, DEMO_DEVID

    return {
        "INTERLOCK_DEMO_API_KEY": STANDIN_API_KEY,
        "INTERLOCK_DEMO_PTV_DEVID": DEMO_DEVID,
        "INTERLOCK_DEMO_PTV_KEY": DEMO_API_KEY,
    }


def _pointed(value: Any, base_url: str) -> Any:
    if isinstance(value, str):
        return value.replace(URL_PLACEHOLDER, base_url)
    if isinstance(value, dict):
        return {k: _pointed(v, base_url) for k, v in value.items()}
    if isinstance(value, list):
        return [_pointed(v, base_url) for v in value]
    return value


def write_config(directory: Path, base_url: str) -> tuple[Path, dict[str, list[str]]]:
    """The demo config pointed at ``base_url``, written in ``directory``; its path, and the
    stand-in URLs each component reads."""
    from interlock.config.loader import read_json, shipped_config

    doc = _pointed(read_json(shipped_config("demo.json")), base_url)
    doc.pop("$schema", None)  # relative to config/, which this folder is not
    doc["description"] = f"interlock against the stand-ins on {base_url} (`interlock standins`)"
    doc["runtime_settings"].update(state_dir="state", data_dir="data", admin_socket="admin.sock")
    path = directory / CONFIG_NAME
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    urls: dict[str, list[str]] = {}

    def collect(name: str, value: Any) -> None:
        if isinstance(value, str) and value.startswith(base_url):
            urls.setdefault(name, []).append(value)
        elif isinstance(value, dict):
            for v in value.values():
                collect(name, v)
        elif isinstance(value, list):
            for v in value:
                collect(name, v)

    for name, spec in doc["components"].items():
        collect(name, spec.get("settings", {}))
    return path, urls


def _say(text: str = "") -> None:
    print(text, flush=True)  # at once: whoever waits for "ready" reads line by line


async def _serve(port: int, directory: Path) -> int:
    import asyncio

    from interlock.components.standins import StandinServer

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with StandinServer(port=port) as server:
            path, urls = write_config(directory, server.base_url)
            _say(f"stand-ins for every source on {server.base_url} (nothing leaves this machine)")
            for name, found in urls.items():
                for url in found:
                    _say(f"  {name:<28} {url}")
            _say(f"config: {path}")
            _say(
                "in another terminal, export the stand-ins' credentials (not real keys) and serve:"
            )
            for key, value in credentials().items():
                _say(f"  export {key}={value}")
            _say(f"  interlock serve --config {path}")
            _say("ready: serving until Ctrl-C (SIGINT) or SIGTERM")
            await stop.wait()
    except OSError as exc:
        print(
            f"interlock: cannot serve the stand-ins on 127.0.0.1:{port}: {exc.strerror or exc}; "
            "pick a free port with --port-base, or 0",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return EXIT_OK


def cmd_standins(args: argparse.Namespace) -> int:
    """``interlock standins``: serve until a stop signal; 0 after it."""
    if not 0 <= args.port_base <= 65535:
        print(
            f"interlock: --port-base {args.port_base} is not a TCP port; give 0 to 65535",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    directory = args.dir or Path(tempfile.mkdtemp(prefix="interlock-standins-", dir="/tmp"))
    directory.mkdir(parents=True, exist_ok=True)
    import asyncio

    return asyncio.run(_serve(args.port_base, directory.resolve()))


COMMANDS = {"standins": cmd_standins}
