"""The `moorage` command: serve the registry, and operate a deployment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from moorage.app import create_app
from moorage.errors import ConfigurationError
from moorage.log import configure_logging
from moorage.settings import Settings, load_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="TOML config file; MOORAGE_* variables override it."),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Where metadata and blobs live (MOORAGE_DATA_DIR)."),
]


def deployment_settings(
    config: Path | None, data_dir: Path | None, **overrides: object
) -> Settings:
    """The settings every command finds its deployment by, or a clean exit on bad ones."""
    try:
        return load_settings(config, data_dir=data_dir, **overrides)
    except ConfigurationError as exc:
        typer.echo(f"moorage: {exc.message}", err=True)
        raise typer.Exit(2) from None


@app.callback()
def _group() -> None:
    """moorage: a self-hosted private container image registry."""


@app.command()
def serve(
    listen: Annotated[
        str | None,
        typer.Option("--listen", help="HOST:PORT to listen on (default 127.0.0.1:5000)."),
    ] = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Run the registry."""
    settings = deployment_settings(config, data_dir, listen=listen)
    configure_logging(settings.log_level, settings.log_format)
    uvicorn.run(
        create_app(settings),
        host=settings.listen_host,
        port=settings.listen_port,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )


def main() -> None:
    """Entry point of the `moorage` console script."""
    app()
