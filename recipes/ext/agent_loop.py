"""verl's single-turn agent loop, with each video's time spacing in the actor's position ids.

verl 0.9.1's `AgentLoopWorker._compute_position_ids` builds the M-RoPE position ids the actor trains
on from the model's `get_rope_index` with the image/video grids only, not the processor's
`second_per_grid_ts`: Qwen2.5-VL then spaces the temporal patches of every clip 1 s apart, whatever its
fps, while vLLM, HF generation and the SFT dataset (recipes/ext/sft_dataset.py) use the clip's real
spacing (2 s per patch at 1 fps). verl leaves a hook for this: a processor attribute
`get_rope_index_kwargs(multi_modal_inputs)` whose result is added to that call.

For Qwen2.5-VL the processor's `get_rope_index` (verl binds transformers' to it) is also replaced by
the released convention that vLLM computes (evaluation/backends/qwen_positions.py): transformers 5.9
places text after a video and fractional time steps differently, so the actor's positions would not be
the rollout's. `VideoTimingSingleTurnAgentLoop` is verl's `SingleTurnAgentLoop` that sets both on the
processor it shares with its worker. It is registered through verl's own custom-agent-loop file
(recipes/config/agent_loops.yaml, `actor_rollout_ref.rollout.agent.agent_loop_config_path`) and made
the default (`agent.default_agent_loop: medgrpo_single_turn`), in recipes/config/medgrpo_grpo.yaml;
the launchers pass the file's absolute path (Ray workers on other nodes have another working folder).
This works for verl's v1 trainer (TransferQueue) and the legacy one alike.
"""

from __future__ import annotations

from typing import Any

from verl.experimental.agent_loop.single_turn_agent_loop import SingleTurnAgentLoop

from evaluation.backends.qwen_positions import use_released_positions

AGENT_NAME = "medgrpo_single_turn"


def _video_timing_kwargs(multi_modal_inputs: dict[str, Any]) -> dict[str, Any]:
    seconds = multi_modal_inputs.get("second_per_grid_ts")
    return {} if seconds is None else {"second_per_grid_ts": seconds}


def add_video_timing(processor: Any) -> None:
    """Have verl's position-id computation pass `second_per_grid_ts` on, with Qwen2.5-VL's released
    positions (no-op without a processor; a processor's own hook is kept)."""
    if processor is None:
        return
    if getattr(processor, "get_rope_index_kwargs", None) is None:
        processor.get_rope_index_kwargs = _video_timing_kwargs
    use_released_positions(processor, getattr(processor, "config", None))


class VideoTimingSingleTurnAgentLoop(SingleTurnAgentLoop):
    """verl's SingleTurnAgentLoop; its (worker-shared) processor gets `add_video_timing`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        add_video_timing(self.processor)
