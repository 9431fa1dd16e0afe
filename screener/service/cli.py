"""`screener serve`: the HTTP service under uvicorn (added to the screener CLI by entry
point, so the screener never imports the service)."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(
    help="Run the HTTP service (settings from SCREENER_* variables).",
    invoke_without_command=True,
    no_args_is_help=False,
)


@app.callback()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port to listen on")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="processes; each loads its own models and indexes")
    ] = 1,
) -> None:
    """Serve the API (OpenAPI docs at /docs) until interrupted."""
    import uvicorn

    from screener.service.app import create_app
    from screener.service.settings import ServiceSettings

    settings = ServiceSettings()
    if workers > 1:
        uvicorn.run(
            "screener.service.app:create_service",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=None,
        )
        return
    uvicorn.run(
        create_app(settings, configure_logs=True),
        host=host,
        port=port,
        log_config=None,
        timeout_graceful_shutdown=30,
    )
