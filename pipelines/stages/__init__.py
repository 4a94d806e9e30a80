"""One module per DVC stage: read params, call `augment`, write the stage's declared outs."""
import os

# Before torch (and its OpenMP runtime) loads: idle OpenMP threads sleep instead of spinning, so a
# stage sharing its cores with another job slows down gracefully (see pipelines/cpu_threads.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
