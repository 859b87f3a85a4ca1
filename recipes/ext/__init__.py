"""verl extension points of the MedGRPO recipes (loaded through verl's own hooks, never patched in).

- cpu_platform: a "cpu" platform for verl's platform registry (plain gloo process group).
- cpu_rollout:  a rollout replica serving verl's agent loop with transformers `generate` on CPU.
- sft_cpu:      verl's SFT trainer on a plain gloo process group (torchrun on CPU).

Processes pick them up with `VERL_USE_EXTERNAL_MODULES=recipes.ext.cpu_platform,recipes.ext.cpu_rollout`
(set by `medgrpo_engine=cpu`, recipes/config/medgrpo_engine/cpu.yaml, for the Ray workers).
"""
