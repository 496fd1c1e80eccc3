"""``corenet export`` and ``corenet import-weights``."""

from __future__ import annotations

import enum
from pathlib import Path

import typer


class Target(str, enum.Enum):
    torch = "torch"
    onnx = "onnx"


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _load(checkpoint: Path):
    from corenet.errors import CheckpointError
    from corenet.network import load

    try:
        return load(checkpoint, None)
    except CheckpointError as exc:
        raise _fail(str(exc)) from None


def export(
    checkpoint: Path = typer.Argument(..., help="A network saved by `corenet train` or corenet.save."),
    out: Path = typer.Argument(..., help="The file to write: OUT.pt (--to torch; OUT.py is written beside it) "
                                         "or OUT.onnx (--to onnx)."),
    to: Target = typer.Option(..., "--to", help="torch: a PyTorch state dict and the nn.Module source that loads "
                                                "it; onnx: an ONNX graph (opset 17, float32)."),
    class_name: str | None = typer.Option(None, "--class-name", help="Name of the generated nn.Module class "
                                                                     "(default: from OUT's file name)."),
    input_rank: int | None = typer.Option(None, "--input-rank", min=2, max=5,
                                          help="Axes of the network's input, batch included (only needed when "
                                               "the layers do not tell, e.g. a BatchNormalization first)."),
) -> None:
    """Export a trained network to PyTorch or ONNX; the exported model computes corenet's testing phase.

    Needs the extras: pip install 'corenet-export\\[torch]' or 'corenet-export\\[onnx]'.
    """
    from corenet_export.errors import ExportError, MissingExtra

    network = _load(checkpoint)
    try:
        if to is Target.torch:
            from corenet_export.torch_export import export_torch

            result = export_torch(network, out, class_name=class_name, origin=checkpoint.name, input_rank=input_rank)
            typer.echo(f"wrote {result.weights} (state dict, {len(result.program.state_dict())} tensors) and "
                       f"{result.module} (class {result.class_name})")
            typer.echo(f"load it: from {result.module.stem} import load; model = load()")
        else:
            if class_name is not None:
                raise ExportError("--class-name applies to --to torch only")
            from corenet_export.onnx_export import export_onnx

            result = export_onnx(network, out, origin=checkpoint.name, input_rank=input_rank)
            typer.echo(f"wrote {result.path} (ONNX opset {result.opset}, float32, input 'input', output 'output'; "
                       f"passes onnx.checker)")
    except (ExportError, MissingExtra, OSError) as exc:
        raise _fail(str(exc)) from None


def import_weights(
    model: Path = typer.Argument(..., help="A PyTorch state dict (torch.save(model.state_dict(), MODEL.pt))."),
    into: str = typer.Option(..., "--into", help="The config (a name from `corenet train --list`, or a YAML "
                                                  "file) that describes the corenet network."),
    output: Path | None = typer.Option(None, "--output", "-o", help="The checkpoint to write "
                                                                    "(default: MODEL's name with .ckpt)."),
    data: Path | None = typer.Option(None, "--data", help="Folder of MNIST IDX files, for configs on file data "
                                                          "sets (as for corenet train); kept for corenet evaluate."),
) -> None:
    """Build the network a config describes and load a PyTorch state dict's weights into it; save a checkpoint.

    Understands the layout `corenet export --to torch` writes, and state dicts whose parameter groups
    follow corenet's layers in order (e.g. an nn.Sequential). Needs: pip install 'corenet-export\\[torch]'.
    """
    from corenet.config import ConfigError
    from corenet.errors import CheckpointError
    from corenet.network import save
    from corenet_export.errors import ExportError, MissingExtra
    from corenet_export.import_weights import assign_state, network_from_config, read_state_dict

    target = output or Path(model.with_suffix(".ckpt").name)
    try:
        state = read_state_dict(model)
        network = network_from_config(into, data)
        assignments = assign_state(network, state, str(model))
        save(target, network)
    except (ExportError, MissingExtra, ConfigError, OSError) as exc:
        raise _fail(str(exc)) from None
    except CheckpointError as exc:
        raise _fail(str(exc)) from None
    for item in assignments:
        source = item.source_prefix or "(top level)"
        typer.echo(f"  {source}.{{{', '.join(item.names)}}} -> layer {item.layer_index} "
                   f"({network.layers[item.layer_index]!r})")
    typer.echo(f"wrote {target} ({len(assignments)} weighted parts from {model}); try: corenet evaluate {target}")


def register(app: typer.Typer) -> None:
    """Add ``export`` and ``import-weights`` to the corenet typer app."""
    app.command("export")(export)
    app.command("import-weights")(import_weights)
