"""Checkpoint tools: turn a verl ``global_step_N`` checkpoint into a verified Hugging Face model folder.

- :mod:`ckpt_tools.layout`     locate the actor folder, the step and the backend of a checkpoint
- :mod:`ckpt_tools.shards`     reassemble FSDP shard files into a full state dict (independently of verl)
- :mod:`ckpt_tools.export`     FSDP merge through ``verl.model_merger`` / Megatron copy of mbridge's HF weights
- :mod:`ckpt_tools.verify`     reload the output with transformers and compare weights and logits
- :mod:`ckpt_tools.model_card` the short ``README.md`` written beside the weights
- :mod:`ckpt_tools.merge`      the command line (``python -m ckpt_tools.merge --help``)
"""

from ckpt_tools.layout import CheckpointError, CheckpointLayout, resolve_checkpoint

__all__ = ["CheckpointError", "CheckpointLayout", "resolve_checkpoint"]
