"""The same training steps in PyTorch CPU, written as a PyTorch user would write them.

Each step: zero the gradients, forward, backward (from the loss for W1, from a
fixed error tensor for the single layers, like corenet's ``backward(error)``),
optimizer step. The single-layer inputs require gradients because corenet's
layers always return the error for the previous layer.
"""

from __future__ import annotations

from corenet_bench import workloads as wl
from corenet_bench.corenet_cases import Case


def build(key: str, dtype: str, torch) -> Case:
    """The PyTorch case for workload ``key`` in ``dtype`` (``float64`` or ``float32``)."""
    torch.manual_seed(0)
    return _BUILDERS[key](getattr(torch, dtype), torch)


def _dtypes(*tensors) -> list[str]:
    return sorted({str(t.dtype).replace("torch.", "") for t in tensors})


def _layer_case(torch, forward, parameters: list, x, optimizer=None) -> Case:
    """``forward`` on ``x`` (requires grad) and backward from a fixed error of the output's shape."""
    x.requires_grad_(True)
    with torch.no_grad():
        error = torch.randn_like(forward(x))

    def step():
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
        x.grad = None
        output = forward(x)
        output.backward(error)
        if optimizer is not None:
            optimizer.step()
        return output

    def dtypes() -> list[str]:
        return _dtypes(step(), x.grad, *parameters)

    return Case(step, dtypes)


def _sgd(torch, parameters: list):
    return torch.optim.SGD(parameters, lr=wl.SGD_RATE)


def lenet_module(torch, dtype):
    """corenet-lenet's network in PyTorch (logits; the softmax is in the loss): (b, 1, 28, 28) -> (b, 10)."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(784, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    ).to(dtype)


def _lenet(dtype, torch) -> Case:
    nn = torch.nn
    model = lenet_module(torch, dtype)
    # corenet's L2 shrinkage lr*alpha*w, taken on the weights before the Adam step, is AdamW's weight decay
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4, betas=(0.9, 0.999), eps=1e-8,
                                  weight_decay=4e-4)
    inputs = torch.randn(wl.LENET_BATCH, 1, 28, 28, dtype=dtype)
    labels = torch.randint(0, 10, (wl.LENET_BATCH,))
    loss_function = nn.CrossEntropyLoss(reduction="sum")  # SoftMax + cross entropy summed over the batch

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_function(model(inputs), labels)
        loss.backward()
        optimizer.step()
        return loss

    return Case(step, lambda: _dtypes(step(), model(inputs), *model.parameters()))


def _recurrent(kind: str):
    def builder(dtype, torch) -> Case:
        steps, inputs, hidden, outputs = wl.RNN_SIZES
        recurrent = getattr(torch.nn, kind)(inputs, hidden).to(dtype)
        head = torch.nn.Linear(hidden, outputs).to(dtype)
        parameters = [*recurrent.parameters(), *head.parameters()]
        x = torch.randn(steps, inputs, dtype=dtype)  # unbatched: (time, features), like corenet

        def forward(sequence):
            hidden_states, _ = recurrent(sequence)
            return torch.sigmoid(head(hidden_states))

        return _layer_case(torch, forward, parameters, x, _sgd(torch, parameters))

    return builder


def _batchnorm(dtype, torch) -> Case:
    module = torch.nn.BatchNorm2d(wl.BATCHNORM_SHAPE[1], eps=1e-10, momentum=0.2).to(dtype)
    parameters = list(module.parameters())
    x = torch.randn(*wl.BATCHNORM_SHAPE, dtype=dtype)
    return _layer_case(torch, module, parameters, x, _sgd(torch, parameters))


def _dropout(dtype, torch) -> Case:
    module = torch.nn.Dropout(p=1.0 - wl.DROPOUT_KEEP)
    return _layer_case(torch, module, [], torch.randn(*wl.DROPOUT_SHAPE, dtype=dtype))


def _conv(dtype, torch) -> Case:
    kernels, m, n = wl.CONV_KERNELS
    module = torch.nn.Conv2d(wl.CONV_INPUT[1], kernels, (m, n), padding=(m // 2, n // 2)).to(dtype)
    parameters = list(module.parameters())
    x = torch.randn(*wl.CONV_INPUT, dtype=dtype)
    return _layer_case(torch, module, parameters, x, _sgd(torch, parameters))


_BUILDERS = {
    "W1": _lenet,
    "W2": _recurrent("RNN"),
    "W3": _recurrent("LSTM"),
    "W4": _batchnorm,
    "W5": _dropout,
    "W6": _conv,
}
