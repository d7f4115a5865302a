"""fit keeps freed memory in the process (neurodyn.heap): measured as page faults, in fresh processes."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning is Linux-only")

# 25 rounds of three 16 MiB tensors, written and freed; prints the minor page faults of the last 5
# (the first rounds grow the heap) and whether the setting is in effect
SCRIPT = """
import resource, sys, torch
import neurodyn as nd
from neurodyn import heap
from neurodyn.tasks import PerceptualDecisionMaking
torch.set_num_threads(2)
if sys.argv[1] == "fit":
    task = PerceptualDecisionMaking(dt=0.05)
    nd.fit(nd.RateRNN(8, task.n_in, task.n_out, tau=0.1), task, steps=1, batch_size=2, eval_batch_size=2,
           progress=False)
def rounds(n):
    for _ in range(n):
        tensors = [torch.ones(4 << 20) for _ in range(3)]
        del tensors
rounds(20)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
rounds(5)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before, heap._applied)
"""


def _faults(mode: str, **env: str) -> tuple[int, str]:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True, timeout=120,
                         env={**os.environ, **env}).stdout.split()
    return int(out[0]), out[1]


def test_fit_keeps_freed_memory_for_the_next_tensors():
    default, applied = _faults("plain")
    assert applied == "None"  # nothing set before fit runs
    if default < 1000:
        pytest.skip(f"this malloc returns no memory to the system here ({default} faults without the setting)")
    kept, applied = _faults("fit")
    assert applied == "True"
    assert kept < default / 20, (kept, default)  # 0 against ~40 000 (120 MiB) on glibc 2.36


@pytest.mark.parametrize("env", [{"NEURODYN_KEEP_FREED_MEMORY": "0"}, {"MALLOC_TRIM_THRESHOLD_": "131072"},
                                 {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=131072"}])
def test_opting_out_or_tuning_malloc_yourself_leaves_it_alone(env):
    assert _faults("fit", **env)[1] == "False"
