"""The `colonnade` command: serve the shop, migrate its database, manage staff, load demo data."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
import uvicorn
from rich.console import Console
from rich.panel import Panel

from colonnade import migrations
from colonnade.app import Shop, assemble, create_app
from colonnade.kernel.errors import ColonnadeError
from colonnade.kernel.settings import Settings
from colonnade.modules import MODULES

cli = typer.Typer(
    help="Colonnade: a commerce platform that survives Black Friday.", no_args_is_help=True
)
users = typer.Typer(help="Staff accounts.", no_args_is_help=True)
cli.add_typer(users, name="users")
console = Console()

T = TypeVar("T")


def _with_shop(work: Callable[[Shop], Awaitable[T]]) -> T:
    """Run `work` against a migrated shop, then close it; domain errors end the command cleanly."""

    async def run() -> T:
        shop = assemble(Settings())
        try:
            await migrations.upgrade(shop.db, MODULES)
            await shop.keyring.load()
            return await work(shop)
        finally:
            await shop.db.dispose()

    try:
        return asyncio.run(run())
    except ColonnadeError as error:
        console.print(f"[red]{error.title}:[/red] {error.detail}")
        raise typer.Exit(1) from error


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    demo_data: Annotated[
        bool,
        typer.Option(
            "--demo-data/--no-demo-data", help="Load the demo shop into an empty database."
        ),
    ] = False,
) -> None:
    """Serve the embedded shape: every module in this process, migrated on start."""
    if demo_data:
        from colonnade.demo import load_demo

        _with_shop(lambda shop: load_demo(shop, console))
    base = f"http://{host}:{port}"
    console.print(
        Panel.fit(
            f"Storefront API  {base}/store/products?market=US\n"
            f"API docs        {base}/docs\n"
            f"Health          {base}/health/ready\n"
            f"Metrics         {base}/metrics",
            title="Colonnade is starting",
        )
    )
    uvicorn.run(create_app(Settings()), host=host, port=port, log_level="warning")


@cli.command()
def migrate() -> None:
    """Bring the database schema to the newest revision of every module."""

    async def done(_: Shop) -> None:
        console.print("[green]database is up to date[/green]")

    _with_shop(done)


@cli.command("demo-data")
def demo_data() -> None:
    """Load the demo shop (markets, products, prices, stock) unless it has products already."""
    from colonnade.demo import load_demo

    _with_shop(lambda shop: load_demo(shop, console))


@users.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="The staff member's e-mail address.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True, hide_input=True, confirmation_prompt=True, help="At least 12 characters."
        ),
    ],
) -> None:
    """Create a staff account that holds every scope."""

    async def create(shop: Shop) -> None:
        member = await shop.identity.create_staff(email, password)
        console.print(f"[green]created admin[/green] {member.email} ({len(member.scopes)} scopes)")

    _with_shop(create)


def main() -> None:
    cli()
