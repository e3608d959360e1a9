"""python -m reference_service --model-path DIR [--port N] [--host H]
[--default-model NAME] [--max-body-bytes N] [--api-profile FILE]; each flag
falls back to its environment variable (MODEL_PATH, PORT, HOST, DEFAULT_MODEL,
MAX_BODY_BYTES, MAX_SERIES, ALLOW_PICKLE, API_PROFILE)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

import uvicorn

from .app import Settings, State, create_app
from .profile import Profile, ProfileError
from .profile import load as load_profile


class Server(uvicorn.Server):
    """uvicorn drains in-flight requests on SIGTERM; /ready flips to 503 first."""

    def __init__(self, config: uvicorn.Config, state: State):
        super().__init__(config)
        self.state = state

    def handle_exit(self, sig, frame) -> None:
        if not self.state.draining:
            logging.getLogger("reference_service").info("signal %s: draining, /ready now 503", sig)
        self.state.draining = True
        super().handle_exit(sig, frame)


def parse_args(argv=None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="python -m reference_service", description=__doc__)
    p.add_argument("--model-path", default=env("MODEL_PATH"), help="directory of bundles (MODEL_PATH)")
    p.add_argument("--port", type=int, default=int(env("PORT", "8000")), help="(PORT, 8000)")
    p.add_argument("--host", default=env("HOST", "127.0.0.1"), help="(HOST, 127.0.0.1)")
    p.add_argument("--default-model", default=env("DEFAULT_MODEL") or None,
                   help="bundle used without ?model= (DEFAULT_MODEL)")
    p.add_argument("--max-body-bytes", type=int, default=int(env("MAX_BODY_BYTES", str(8 * 1024 * 1024))),
                   help="largest accepted /predict body (MAX_BODY_BYTES, 8 MiB)")
    p.add_argument("--max-series", type=int, default=int(env("MAX_SERIES", "20000")),
                   help="most series in one /predict (MAX_SERIES, 20000): more is 422 too_many_series")
    p.add_argument("--allow-pickle", action="store_true",
                   default=env("ALLOW_PICKLE", "").lower() in ("1", "true", "yes"),
                   help="read bundles written before NeuralForecast 3.3 with pickle, which executes "
                        "any code they hold; NeuralForecast 3.3's restricted reader refuses those "
                        "with fitted local scalers or written by 2.x (ALLOW_PICKLE)")
    p.add_argument("--api-profile", default=env("API_PROFILE") or None,
                   help="the request/response shapes of the service being replaced, as the Rust "
                        "service's --api-profile (docs/profiles.md) (API_PROFILE)")
    args = p.parse_args(argv)
    if not args.model_path:
        p.error("--model-path or MODEL_PATH is required")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        profile = load_profile(args.api_profile) if args.api_profile else Profile()
    except ProfileError as e:
        print(f"reference_service: API profile {e}", file=sys.stderr)
        return 2
    settings = Settings(args.model_path, args.default_model, args.max_body_bytes, args.max_series,
                        args.allow_pickle, profile)
    state = State()
    server: Server | None = None

    def stop_on_load_failure() -> None:
        server.should_exit = True  # uvicorn's main loop polls this

    app = create_app(settings, state, on_load_failure=stop_on_load_failure)
    config = uvicorn.Config(
        app, host=args.host, port=args.port, workers=1, access_log=False,
        timeout_graceful_shutdown=30, log_config=None,
    )
    server = Server(config, state)
    server.run()
    return 1 if state.load_failed else 0


if __name__ == "__main__":
    sys.exit(main())
