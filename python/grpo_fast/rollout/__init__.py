"""Multi-turn rollouts with tools, layered above `sampler/` and below `trainer/`: `ToolSampler` is a
`Sampler` whose completions are `Rollout`s (model and tool segments, a loss mask that leaves tool
tokens out), for the trainer, `generate` and `eval` alike."""

from grpo_fast.rollout.formats import FORMATS, OUTPUT_MARKER, ChatToolFormat, CodeFenceFormat, build_format
from grpo_fast.rollout.sampler import RolloutLimits, ToolSampler, rollout_metrics
from grpo_fast.rollout.types import MODEL, STOP_REASONS, TOOL, Rollout, Segment, ToolCallRecord

__all__ = ["FORMATS", "MODEL", "OUTPUT_MARKER", "STOP_REASONS", "TOOL", "ChatToolFormat", "CodeFenceFormat",
           "Rollout", "RolloutLimits", "Segment", "ToolCallRecord", "ToolSampler", "build_format", "rollout_metrics"]
