"""``corenet inspect recall``: the gradient reaching each time step, RNN vs LSTM (registered as an inspection)."""

from __future__ import annotations

import json

import typer

from corenet.commands.common import fail, print_table
from corenet_recurrent.gradient_flow import plot_flows, recall_gradient_flow, table_rows
from corenet_recurrent.recall import RecallConfig


def inspect_recall(epochs: int | None, seed: int, delay: int, window: int, streams: int, plot, as_json: bool) -> None:
    """``corenet inspect recall``: train an RNN and an LSTM on delayed recall; print ||dy_T/dx_(T-j)|| per step j."""
    epochs = 20 if epochs is None else epochs
    try:
        configs = [RecallConfig(cell=cell, delay=delay, epochs=epochs, seed=seed) for cell in ("rnn", "lstm")]
    except ValueError as exc:
        raise fail(str(exc)) from None
    flows = []
    for config in configs:
        def report(epoch: int, loss: float, name: str = config.cell) -> None:
            if not as_json:
                typer.echo(f"{name} epoch {epoch + 1:>3}/{epochs}  loss {loss:.4f}")

        flows.append(recall_gradient_flow(config, window=window, streams=streams, on_epoch=report))
    if as_json:
        typer.echo(json.dumps({flow.cell: {"epochs": flow.epochs, "accuracy": flow.accuracy,
                                           "early_late_ratio": [flow.early_late_ratio(i)
                                                                for i in range(len(flow.epochs))],
                                           "norms": [norms.tolist() for norms in flow.norms]}
                               for flow in flows}, indent=2))
    else:
        names = [flow.cell.upper() for flow in flows]
        print_table(f"delayed recall k = {delay}: ||dy_T/dx_(T-j)|| after {epochs} epochs (mean of {streams} "
                     f"streams)", ["steps back j", *names], table_rows(flows))
        ratios = [[str(done) for done in flows[0].epochs]]
        ratios += [[f"{flow.early_late_ratio(i):.1e}" for i in range(len(flow.epochs))] for flow in flows]
        print_table("gradient at the window's earliest fifth / at its latest fifth, per epoch (0: untrained)",
                     ["epoch", *names], [list(row) for row in zip(*ratios)])
        for flow in flows:
            typer.echo(f"{flow.cell.upper()}: held-out accuracy {flow.accuracy:.2%}; the earliest steps get "
                       f"{flow.early_late_ratio():.1e} of the latest steps' gradient")
    if plot is not None:
        plot_flows(flows, plot, delay)
        typer.echo(f"plot: {plot}", err=as_json)
