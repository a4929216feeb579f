"""What this machine is, as a model check or a report names it: the CPU's model, the instruction
sets that decide which kernels a runtime picks, any cap on them, and the runtimes' versions.

The same INT8 file can run different kernels on an AVX2, an AVX-512, a VNNI and an AMX CPU, so
every probe result and quantize report says which one it ran on.
"""

from __future__ import annotations

import os
import platform
from functools import lru_cache
from typing import Any

# The flags that change which kernels oneDNN, OpenVINO and ONNX Runtime's MLAS pick.
ISA_FLAGS = (
    "sse4_1",
    "avx",
    "avx2",
    "fma",
    "avx_vnni",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)
# oneDNN reads this cap; OpenVINO's convolutions honour it, some of its own kernels do not
# (docs/quantization.md).
ISA_CAP_VARIABLE = "ONEDNN_MAX_CPU_ISA"


@lru_cache(maxsize=1)
def cpu_info() -> dict[str, Any]:
    """{"model": ..., "isa": [flags from ISA_FLAGS], "isa_cap": the cap or None}."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and value.strip():
                    model = value.strip()
                elif key == "flags":
                    flags = set(value.split())
                    break
    except OSError:  # not Linux: the model name from platform is all there is
        pass
    return {
        "model": model,
        "isa": [f for f in ISA_FLAGS if f in flags],
        "isa_cap": os.environ.get(ISA_CAP_VARIABLE) or None,
    }


def cpu_summary() -> str:
    """One line: `AMD EPYC (avx2 avx512f ... avx512_vnni)`, plus the cap when one is set."""
    info = cpu_info()
    text = f"{info['model']} ({' '.join(info['isa']) or 'no x86 SIMD flags read'})"
    if info["isa_cap"]:
        text += f", {ISA_CAP_VARIABLE}={info['isa_cap']}"
    return text


# The runtime a model file runs on, by its suffix (birdinfer.models.backends.open_backend).
RUNTIMES = {".xml": "openvino", ".tflite": "litert", ".onnx": "onnxruntime"}


def runtime_version(runtime: str) -> str:
    """`onnxruntime 1.32.0`, `openvino 2026.4.1-...` or `litert 2.3.0`; the name alone if it
    cannot be read."""
    try:
        if runtime == "openvino":
            import openvino

            return f"openvino {openvino.get_version()}"
        if runtime == "litert":
            from importlib.metadata import version

            return f"litert {version('ai-edge-litert')}"
        import onnxruntime

        return f"onnxruntime {onnxruntime.__version__}"
    except Exception:  # noqa: BLE001 - a version string is informative only
        return runtime
