"""vGROUT: vector gradient routing against reward hacking in GRPO fine-tuning of code LLMs."""

__version__ = "0.1.0"
