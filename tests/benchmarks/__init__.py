"""Performance and accuracy benchmarks of lightning-green (not part of ``pytest``).

Plain scripts, run from the repository root; each prints Markdown tables::

    python -m tests.benchmarks                      # all CPU benchmarks (6-15 minutes, by load)
    python -m tests.benchmarks overhead hooks       # some of them
    python -m tests.benchmarks --quick              # every benchmark, shrunk (a smoke run)
    python -m tests.benchmarks.overhead --rounds 9  # one benchmark with its own options

Benchmarks: ``overhead`` (wall time of a small fit: bare, EnergyCallback, codecarbon,
DeviceStatsMonitor), ``hooks`` (time the batch hooks add per batch), ``accuracy`` (known
power traces replayed through sensors, meter and ledger), ``scale`` (memory over 100k+
steps, sampler-thread CPU), ``throughput`` (BERT recipe samples/s at 32 / bf16 / 16 vs a
plain PyTorch loop). ``nvml_check`` needs an NVIDIA GPU and is never run by default.

Timings are the machine's, on that day: nothing here asserts on them. The correctness of
the accuracy replay is asserted in the default suite (``tests/engine/test_accuracy.py``, ``tests/engine/test_accuracy_sensors.py``).
"""
