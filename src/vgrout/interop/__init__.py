"""Bridges to other training stacks: the vgrout environment as a TRL reward function."""

from vgrout.interop.trl import GraderReward, JsonlGradeSink, completion_text, prompt_rows

__all__ = ["GraderReward", "JsonlGradeSink", "completion_text", "prompt_rows"]
