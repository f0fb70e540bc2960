"""Benchmark harness for the dropblock packages (issue 7).

One module per framework (``torch_bench``, ``tf_bench``, ``jax_bench``) times, side by side
in one process, our layer against the framework's dropout, ``x * 2``, the dense algorithm
and the public DropBlocks, and writes a JSON file; ``report`` turns those files into
``docs/benchmarks.md`` and ``docs/benchmarks.png``. ``python -m nox -s bench`` does it all.
"""

__version__ = "0.1.0"
