"""Run configuration: the schema (frozen dataclasses, one per stage, under one root Config), the
loader (YAML, `extends:`, overrides, bundled names) and the legacy table (old spellings still
accepted, each with the release that removes it).

    from birdinfer.config import Config, load_config
    config = load_config("birdclef2025", {"models": ["model.onnx"]})
"""

from birdinfer.config.coerce import to_plain
from birdinfer.config.legacy import LEGACY, Legacy, apply_legacy, overdue, renamed_name
from birdinfer.config.loader import (
    bundled_config_dir,
    from_dict,
    load_config,
    parse_override,
    read_yaml,
    resolve_config_path,
    set_dotted,
    to_dict,
)
from birdinfer.config.schema import (
    AudioConfig,
    BudgetConfig,
    CompetitionConfig,
    Config,
    DemoConfig,
    ExecutorConfig,
    ImageConfig,
    InferenceConfig,
    InputConfig,
    MelConfig,
    ModelSpec,
    NormStep,
    OutputConfig,
    PcenConfig,
    PostprocessConfig,
    as_steps,
)

__all__ = [
    # the schema
    "AudioConfig",
    "BudgetConfig",
    "CompetitionConfig",
    "Config",
    "DemoConfig",
    "ExecutorConfig",
    "ImageConfig",
    "InferenceConfig",
    "InputConfig",
    "MelConfig",
    "ModelSpec",
    "NormStep",
    "OutputConfig",
    "PcenConfig",
    "PostprocessConfig",
    "as_steps",
    # the loader
    "bundled_config_dir",
    "from_dict",
    "load_config",
    "parse_override",
    "read_yaml",
    "resolve_config_path",
    "set_dotted",
    "to_dict",
    "to_plain",
    # the legacy table
    "LEGACY",
    "Legacy",
    "apply_legacy",
    "overdue",
    "renamed_name",
]
