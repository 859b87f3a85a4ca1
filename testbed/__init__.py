"""Test doubles, toy data and the demo / smoke orchestration: never imported by the training or evaluation path.

Toy MedVidBench sets (`toy*`), a local OpenAI-compatible judge server and scripted caption models, tiny
random Qwen-VL models, scripted rollouts and policies, and the runs behind `bash run.sh demo | train-smoke |
learn-smoke`. Tests, benchmarks and run.sh import it; reward_fns, data_preprocess, evaluation, recipes
and ckpt_tools never do (tests/test_layout.py checks this).
"""
