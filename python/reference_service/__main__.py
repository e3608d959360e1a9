"""reference-service (or python -m reference_service) --model-path DIR [--port N]
[--host H] ...: the settings are reference_service.settings.Settings, each
flag falling back to its environment variable (`reference-service --help`)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from types import FrameType

import uvicorn

from . import logs
from . import settings as settings_mod
from .app import State, create_app
from .profile import Profile, ProfileError
from .profile import load as load_profile

log = logging.getLogger("reference_service")


class Server(uvicorn.Server):
    """uvicorn drains in-flight requests on SIGTERM; /ready flips to 503 first."""

    def __init__(self, config: uvicorn.Config, state: State):
        super().__init__(config)
        self.state = state

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.state.draining:
            log.info("shutdown signal: draining, /ready now 503", extra={"signal": sig})
        self.state.draining = True
        super().handle_exit(sig, frame)


def main(argv: Sequence[str] | None = None) -> int:
    settings = settings_mod.load(argv)  # exits 2 naming a bad flag or variable
    logs.configure(settings.log_format, settings.log_level)
    try:
        profile = load_profile(settings.api_profile) if settings.api_profile else Profile()
    except ProfileError as e:
        print(f"reference_service: API profile {e}", file=sys.stderr)
        return 2
    state = State()
    server: Server | None = None

    def stop_on_load_failure() -> None:
        if server is not None:
            server.should_exit = True  # uvicorn's main loop polls this

    app = create_app(settings, state, on_load_failure=stop_on_load_failure, profile=profile)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, workers=1, access_log=False,
        timeout_graceful_shutdown=30, log_config=None,
    )
    server = Server(config, state)
    server.run()
    return 1 if state.load_failed else 0


if __name__ == "__main__":
    sys.exit(main())
