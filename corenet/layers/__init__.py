"""The core layers. Import from the submodules; this package only documents them.

fully_connected: FullyConnected; activations: ReLU, SoftMax; flatten: Flatten;
conv: Conv; pooling: Pooling.
"""
