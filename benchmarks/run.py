"""Run the corenet benchmark suite (W1-W7) against PyTorch CPU: `corenet bench` for a checkout.

    python benchmarks/run.py                      # everything, float64 and float32
    python benchmarks/run.py -w W1 -w W6 --dtype float64 --repeats 20 --json results.json

It takes exactly the options of `corenet bench` (``--help`` lists them), which the plugin
corenet-bench (``pip install ./plugins/bench``) adds to the CLI. To see the
effect of OpenBLAS environment variables, run it once as is and once with them unset
for that command alone, e.g.
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run.py --json unset.json``;
the JSON records the variables each run saw.
"""

from __future__ import annotations

import sys

from corenet.cli import app

if __name__ == "__main__":
    app(["bench", *sys.argv[1:]], prog_name="benchmarks/run.py")
