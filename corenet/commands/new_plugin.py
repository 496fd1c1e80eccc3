"""``corenet new-plugin``: write a ready plugin project with one layer, its hooks, tests and a config."""

from __future__ import annotations

from pathlib import Path

import typer

from corenet.commands.common import fail


def new_plugin(
    name: str = typer.Argument(..., metavar="NAME", help="The plugin's name, e.g. swish: the project "
                               "corenet-swish with the package corenet_swish."),
    layer: str | None = typer.Option(None, "--layer", metavar="CLASS", help="The layer's class and registry "
                                     "name (default: NAME in CamelCase, e.g. Swish)."),
    trainable: bool = typer.Option(False, "--trainable", help="A layer with weights: weights/bias, their "
                                   "gradients, the optimizer and initialize (corenet.base.TrainableLayer)."),
    to: Path | None = typer.Option(None, "--to", metavar="DIR", help="The project folder to create (default: "
                                   "./corenet-NAME); it must not exist or be empty."),
    force: bool = typer.Option(False, "--force", help="Allow a layer name that is already registered (your "
                               "plugin then replaces that layer wherever it is installed)."),
) -> None:
    """Create a plugin project: pyproject.toml with the corenet entry point, the hooks module,
    a layer skeleton, its tests (the generic layer contract), a training config and a README.

    As generated it installs with `pip install -e DIR` and passes its own tests; put your
    math where the layer says YOUR MATH, then `corenet check -g Test<Layer>`.

    \b
    corenet new-plugin swish
    corenet new-plugin scale --trainable --to scale-plugin
    """
    from corenet import __version__
    from corenet.plugin_template import TemplateError, plan_plugin, write
    from corenet.plugins import get_registry

    try:
        plan = plan_plugin(name, layer, trainable=trainable, folder=to, registry=get_registry(), force=force)
    except TemplateError as exc:
        raise fail(str(exc)) from None
    files = write(plan, __version__.split("+")[0])
    folder = plan.folder
    typer.echo(f"created {folder}/ ({plan.distribution}): the {plan.layer} layer in "
               f"{plan.package}/{plan.module}.py")
    for path in files:
        typer.echo(f"  {path.relative_to(folder)}")
    typer.echo("next:")
    typer.echo(f"  pip install -e {folder}")
    typer.echo(f"  cd {folder} && pytest")
    typer.echo(f"  corenet check -g {plan.group}")
    typer.echo(f"  corenet train {folder / next(p.name for p in files if p.suffix == '.yaml')}")


def register(app: typer.Typer) -> None:
    app.command("new-plugin")(new_plugin)
