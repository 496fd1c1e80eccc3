"""The benchmark workloads W1-W7: sizes, what each needs installed, and the speed targets.

W1-W6 time one training step (forward + backward + update) of the same
computation in corenet and in PyTorch; W7 times the CLI's start-up. The targets are
issue 12's: ``targets`` bound the fast tier's time over PyTorch's, and the reference
tier may take at most :data:`REFERENCE_TARGET` times the fast tier's time (where the
workload has a fast-tier target for that dtype, except the float32 LSTM).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Workload:
    """One workload. ``targets`` maps a dtype to the highest acceptable ratio fast tier / PyTorch;
    ``reference_dtypes`` lists the dtypes whose reference tier is held to :data:`REFERENCE_TARGET`."""

    key: str
    title: str
    needs: str  # what must be installed (a distribution name), for skip notes
    optimizer: str
    targets: dict[str, float] = field(default_factory=dict)
    reference_dtypes: tuple[str, ...] = ()


SGD_RATE = 1e-3
LENET_BATCH = 64
RNN_SIZES = (200, 32, 64, 16)  # time steps, input, hidden, output
BATCHNORM_SHAPE = (64, 16, 14, 14)
DROPOUT_SHAPE = (1024, 1024)
DROPOUT_KEEP = 0.5
CONV_INPUT = (64, 6, 14, 14)
CONV_KERNELS = (16, 5, 5)
STARTUP_TARGET_MS = 500.0
#: the reference tier's step may take at most this many times the fast tier's
REFERENCE_TARGET = 2.5
STARTUP_COMMANDS = (("--help",), ("list-layers",))

BOTH = ("float64", "float32")

WORKLOADS: dict[str, Workload] = {
    w.key: w
    for w in (
        Workload("W1", f"LeNet step, batch {LENET_BATCH} of 1x28x28", "corenet-lenet (or corenet-reg-l1l2)",
                 "Adam(5e-4, 0.9, 0.999) + L2(4e-4)", {"float64": 0.6, "float32": 0.7}, BOTH),
        Workload("W2", "RNN, 200 steps, 32 -> 64 -> 16", "corenet-recurrent", f"Sgd({SGD_RATE:g})",
                 {"float64": 0.2}, ("float64",)),
        Workload("W3", "LSTM, 200 steps, 32 -> 64 -> 16", "corenet-recurrent", f"Sgd({SGD_RATE:g})",
                 {"float64": 0.2, "float32": 0.7}, ("float64",)),
        Workload("W4", "BatchNormalization on (64, 16, 14, 14)", "corenet-batchnorm", f"Sgd({SGD_RATE:g})",
                 {"float64": 0.5}, ("float64",)),
        Workload("W5", "Dropout(0.5) on (1024, 1024)", "corenet-dropout", "none (no parameters)",
                 {"float64": 0.2}, ("float64",)),
        Workload("W6", "Conv (64, 6, 14, 14) -> 16 kernels 5x5", "corenet", f"Sgd({SGD_RATE:g})",
                 {"float64": 0.6, "float32": 0.8}, BOTH),
        Workload("W7", "start-up: `corenet --help`, `corenet list-layers` (new process)", "corenet", "-"),
    )
}


class Skip(Exception):
    """A workload cannot run here (a plugin is missing); the message says what to install."""
