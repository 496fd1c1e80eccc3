"""Run a training config: seeded build, progress bar, periodic atomic checkpoints, clean Ctrl-C.

The checkpoint on disk is only ever replaced by a complete network saved between
two iterations (atomically, see :mod:`corenet.checkpoint`), so stopping a run at
any moment (Ctrl-C, a crash) leaves the last good checkpoint in place.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from corenet.config import Config, ConfigError, build_data, build_network, iterations_for
from corenet.epochs import EpochLoop, iterations_per_epoch
from corenet.errors import DivergenceError, ShapeError
from corenet.evaluation import Evaluation
from corenet.history import EpochRecord, History


@dataclass
class TrainingRun:
    """What a run did: the network, how far it got, where its last good checkpoint is, its history.

    ``saved_at`` is the iteration the checkpoint file holds (after a Ctrl-C: read back
    from the file itself), None when this run has not saved it.
    """

    config: Config
    network: object
    data_layer: object
    iterations: int
    completed: int = 0
    interrupted: bool = False
    checkpoint: Path | None = None
    saved_at: int | None = None
    seconds: float = 0.0
    evaluation: Evaluation | None = None
    history: History = field(default_factory=History)
    iterations_per_epoch: int = 1

    @property
    def losses(self) -> list[float]:
        return self.network.loss

    @property
    def epochs(self) -> int:
        """Epochs this run trains (the last may be shorter)."""
        return -(-self.iterations // self.iterations_per_epoch)


def prepare(config: Config):
    """Seed NumPy's global generator with ``config.seed``, then build (network, data layer)."""
    from corenet.dtype import default_dtype

    with default_dtype(config.dtype or None):
        np.random.seed(config.seed)
        data_layer = build_data(config)
        net = build_network(config)
    net.data_layer = data_layer
    net.metadata = {
        "config": config.name,
        "data": {"name": config.data.name,
                 "args": {k: v for k, v in config.data.args.items() if k != "batch_size"}},
        "seed": config.seed,
    }
    return net, data_layer


def checkpoint_interval(config: Config, data_layer) -> int:
    """Iterations between periodic saves: the config's, else one epoch (100 iterations for data without
    a fixed training set, see :func:`corenet.epochs.iterations_per_epoch`)."""
    return config.checkpoint_every or iterations_per_epoch(data_layer, config.batch_size)


def train(
    config: Config,
    *,
    checkpoint: str | Path | None = None,
    progress: bool = False,
    callback: Callable[[int, float], None] | None = None,
    on_epoch: Callable[[EpochRecord, TrainingRun], None] | None = None,
    network_ready: Callable[[TrainingRun], None] | None = None,
    force: bool = False,
) -> TrainingRun:
    """Train as ``config`` says; save to ``checkpoint`` (default: the config's) periodically and at the end.

    Training runs in epochs (one pass over the data layer's training set, see
    :mod:`corenet.epochs`); after each, the test set is measured and the run's
    :class:`~corenet.history.History` is written beside the checkpoint
    (``<checkpoint>.history.json`` and ``.csv``). ``callback(iteration, loss)`` runs
    after every step, ``on_epoch(record, run)`` after every epoch and
    ``network_ready(run)`` once the network is built, before the first step.
    The progress bar shows the running mean loss per sample.

    A KeyboardInterrupt stops the run: the result has ``interrupted=True`` and the
    checkpoint file holds the last network saved between iterations (or whatever
    was there before); ``saved_at`` names the iteration in that file. ``force`` lets the
    checkpoint replace a file that is not a corenet checkpoint (see corenet.save).
    """
    from corenet.network import save

    net, data_layer = prepare(config)
    target = checkpoint if checkpoint is not None else config.checkpoint
    run = TrainingRun(config, net, data_layer, iterations_for(config, data_layer),
                      checkpoint=Path(target) if target else None,
                      iterations_per_epoch=iterations_per_epoch(data_layer, config.batch_size))
    if run.checkpoint is not None:
        _check_writable(run.checkpoint, force)
    before = _file_identity(run.checkpoint)
    every = checkpoint_interval(config, data_layer)
    bar = None

    def step(iteration: int, loss: float) -> None:
        run.completed = iteration + 1
        if bar is not None:
            last = net.last_step
            bar(iteration, loss / last.samples if last is not None and last.samples else loss)
        if callback is not None:
            callback(iteration, loss)
        if run.checkpoint is not None and run.completed % every == 0 and run.completed < run.iterations:
            save(run.checkpoint, net, force=force)
            run.saved_at = run.completed

    def epoch_done(record: EpochRecord) -> None:
        if run.checkpoint is not None:
            run.history.save(run.checkpoint)
        if on_epoch is not None:
            on_epoch(record, run)

    loop = EpochLoop(net, run.iterations_per_epoch, test_set=EpochLoop.test_set_of(data_layer), on_step=step,
                     on_epoch=epoch_done)
    loop.history = run.history
    if network_ready is not None:
        network_ready(run)
    started = time.perf_counter()
    try:
        if progress:
            from corenet.progress import training_progress

            with training_progress(run.iterations, config.name) as bar:
                _train(loop, run, config)
        else:
            _train(loop, run, config)
        if run.checkpoint is not None:
            save(run.checkpoint, net, force=force)
            run.saved_at = run.completed
            run.history.save(run.checkpoint)
    except KeyboardInterrupt:
        run.interrupted = True
        run.saved_at = _iteration_in_file(run.checkpoint, before, run.saved_at)
    run.seconds = time.perf_counter() - started
    if not run.interrupted:
        run.evaluation = loop.evaluation
    return run


def _file_identity(path: Path | None) -> tuple | None:
    """What tells whether ``path`` was replaced: (inode, size, mtime), None when absent."""
    try:
        status = path.stat() if path is not None else None
    except OSError:
        return None
    return None if status is None else (status.st_ino, status.st_size, status.st_mtime_ns)


def _iteration_in_file(path: Path | None, before: tuple | None, saved_at: int | None) -> int | None:
    """The iteration the checkpoint at ``path`` holds after an interrupt, read from the file itself.

    A Ctrl-C can land between a save's rename and the line recording it, so the
    file, not the run's bookkeeping, decides: unchanged since the run started ->
    None; else the length of the saved network's loss list (one entry per iteration).
    """
    if path is None or _file_identity(path) in (None, before):
        return None
    from corenet.network import load

    try:
        return len(load(path, None).loss)
    except Exception:  # unreadable: fall back to what the run recorded
        return saved_at


def _check_writable(path: Path, force: bool = False) -> None:
    """Refuse before training, not after it, a checkpoint path that cannot be written."""
    import os

    from corenet.checkpoint import check_target
    from corenet.errors import CheckpointError

    check_target(path, force=force)
    if not os.access(path.parent, os.W_OK):
        raise CheckpointError(f"{path}: cannot save the checkpoint, folder {path.parent} is not writable")


def _train(loop: EpochLoop, run: TrainingRun, config: Config) -> None:
    """Run the loop; a layer's failure (any exception, a third-party layer's too) becomes a ConfigError
    naming its config key and class, e.g. ``network.layers[3] (MyLayer): RuntimeError: ...``."""
    try:
        loop.run(run.iterations)
    except DivergenceError:
        raise
    except Exception as exc:
        if isinstance(exc, ShapeError) or getattr(exc, "layer_index", None) is not None:
            raise ConfigError(f"{config.source}: {_locate(exc, config)}") from exc
        if isinstance(exc, ValueError):  # e.g. the loss refusing raw scores: a config without SoftMax
            raise ConfigError(f"{config.source}: {exc}") from exc
        raise


def _locate(exc: Exception, config: Config) -> str:
    """Name the config key and class of the layer a network's error came from (``exc.layer_index``)."""
    index = getattr(exc, "layer_index", None)
    if index is None:
        return str(exc)
    layer_class = getattr(exc, "layer_class", None)
    if layer_class is None:  # corenet's own errors say which layer
        if config.model is not None:
            return f"network.model {config.model.name}, {exc}"
        what = getattr(exc, "layer_message", str(exc))
    else:  # a layer's own exception: its type tells what went wrong
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if config.model is not None:
            return f"network.model {config.model.name}, layer {index} ({layer_class}): {what}"
    layer = config.layers[index] if index < len(config.layers) else None
    name = layer_class or (layer.label if layer is not None else "?")
    return f"network.layers[{index}] ({name}): {what}"
