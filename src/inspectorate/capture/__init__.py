"""Evidence capture: the crash-safe step recorder, telemetry samplers, collective log.

Writers here produce exactly the formats ``inspectorate.trace`` reads (docs/capture.md).
torch and nvidia-ml-py are imported only when a torch- or NVML-using call runs.
"""

from inspectorate.capture._chain_writer import ChainWriter
from inspectorate.capture._collectives import CollectiveLog, allreduce_logging_hook
from inspectorate.capture._labels import LabelWriter
from inspectorate.capture._proc_sensor import SENSOR_FILE, ProcSensor, run_sensor
from inspectorate.capture._recorder import StepRecorder
from inspectorate.capture._sensors import (
    CpuSampler,
    NetdevSampler,
    NvmlSampler,
    Sensors,
    gpu_available,
)

__all__ = [
    "ChainWriter",
    "CollectiveLog",
    "CpuSampler",
    "LabelWriter",
    "NetdevSampler",
    "NvmlSampler",
    "ProcSensor",
    "SENSOR_FILE",
    "Sensors",
    "StepRecorder",
    "allreduce_logging_hook",
    "gpu_available",
    "run_sensor",
]
