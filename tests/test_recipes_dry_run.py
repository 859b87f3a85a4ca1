"""Dry runs of every recipe launcher (CPU only).

Each launcher runs as `DRY_RUN=1 bash recipes/X.sh ...` in a subprocess. To keep this file fast, most
runs use a stub interpreter (PYTHON=stub) that records the dry-run command line, which is then run
in-process through `recipes.dry_run.main` (verl imports once); two runs go end to end with the
real interpreter (one success, one misspelt key). The data are small parquet files in data_preprocess's
schema, in a folder whose name has a space and a comma (override quoting); one test also runs the
toy generator + converter and dry-runs their output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from recipes import dry_run

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"
# launcher -> (kind, model patch size, actor strategy)
LAUNCHERS = {
    "qwen25vl_7b_sft.sh": ("sft", 14, None),
    "qwen3vl_4b_sft.sh": ("sft", 16, None),
    "qwen25vl_7b_medgrpo.sh": ("ppo", 14, "fsdp2"),
    "qwen25vl_7b_medgrpo_megatron.sh": ("ppo", 14, "megatron"),
    "qwen3vl_4b_medgrpo.sh": ("ppo", 16, "fsdp2"),
    "calibrate_reward_stats.sh": ("ppo", 14, "fsdp2"),
}
STUB = """#!{exe}
import json, os, sys
with open(os.environ["STUB_LOG"], "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
"""


# (data_source, task, qa_type, question, answer) of the small RL / SFT files the tests write
SAMPLES = [
    ("Cholec80-CVS", "CVS", "cvs_assessment", "Assess the critical view of safety.",
     "Two structures: 0, Cystic plate: 1, Hepatocystic triangle: 2"),
    ("JIGSAWS", "SA", "skill_assessment", "Rate the surgical skill.", "Respect for tissue: 2/5"),
    ("AVOS", "DVC", "dense_captioning_gpt", "Describe the events with times.", "0.0-2.0 seconds: cut: a cut."),
    ("CoPESD", "STG", "stg", "Where is the knife?", "1.0 seconds: [10, 20, 30, 40]"),
    ("EgoSurgery", "TAG", "tal", "When is the tool used?", "1.0-3.0 seconds."),
]


def write_frames(root: Path, count: int = 4) -> list[str]:
    """`count` small JPEG frames `frame_<i>.jpg` in `root`; their paths."""
    from PIL import Image

    frames = [str(root / f"frame_{i}.jpg") for i in range(count)]
    for i, frame in enumerate(frames):
        Image.new("RGB", (160, 96), (40 * i, 80, 120)).save(frame)
    return frames


def write_data(data: Path, frames: list[str]) -> None:
    """rl_{train,val}.parquet, sft_{train,val}.parquet and manifest.json in data_preprocess's schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from data_preprocess.video_spec import VideoSpec

    spec = VideoSpec.load(RECIPES / "config" / "medgrpo_video.yaml")
    data.mkdir(parents=True)
    for split, samples in (("train", SAMPLES), ("val", SAMPLES[:2])):
        rl, sft = [], []
        for index, (source, task, qa_type, question, answer) in enumerate(samples):
            prompt = [{"role": "user", "content": f"<video>\n{question}"}]
            common = {"data_source": source, "ability": task, "videos": [spec.video_entry(frames, 1.0)],
                      "extra_info": {"index": index, "id": f"v{index}&&0&&3&&1.0", "qa_type": qa_type,
                                     "data_source": source, "task": task, "fps": 1.0, "split": split}}
            truth = json.dumps({"qa_type": qa_type, "data_source": source, "answer": answer, "fps": 1.0})
            rl.append({**common, "prompt": prompt, "reward_model": {"style": "rule", "ground_truth": truth}})
            sft.append({**common, "messages": [*prompt, {"role": "assistant", "content": answer}]})
        pq.write_table(pa.Table.from_pylist(rl), data / f"rl_{split}.parquet")
        pq.write_table(pa.Table.from_pylist(sft), data / f"sft_{split}.parquet")
    tokens = {task: {"p50": 300, "p95": 300, "max": 300, "over_limit": 0} for _, task, *_ in SAMPLES}
    (data / "manifest.json").write_text(json.dumps({"video_spec": spec.to_dict(),
                                                    "prompt_tokens": {"per_task": tokens}}))


def write_stats(path: Path, data: Path) -> None:
    """Normalization stats covering every (data_source, task) of the RL files."""
    from reward_fns.build import data_pairs
    from reward_fns.normalize import RewardStats

    stats = RewardStats(k=2.0)
    for source, task in data_pairs([str(data / "rl_train.parquet"), str(data / "rl_val.parquet")]):
        stats.set(source, task, [0.1, 0.4, 0.8])
    stats.save(path)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Small RL/SFT parquet + manifest, a stats file covering them, tiny model folders, a stub python."""
    root = tmp_path_factory.mktemp("recipes") / "run dir, v1"
    root.mkdir()
    frames = write_frames(root)
    data = root / "data"
    write_data(data, frames)
    write_stats(root / "stats.json", data)
    models = {}
    for patch, kind in ((14, "qwen2_5_vl"), (16, "qwen3_vl")):
        models[patch] = root / f"model_{kind}"
        models[patch].mkdir()
        (models[patch] / "config.json").write_text(json.dumps({"model_type": kind,
                                                               "vision_config": {"patch_size": patch}}))
    stub = root / "stub_python"
    stub.write_text(STUB.format(exe=sys.executable))
    stub.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUDGE_", "RAY_", "DRY_RUN", "MEDGRPO"))}
    for key in ("MODEL_PATH", "EXPERIMENT", "PYTHON", "NNODES", "GPUS_PER_NODE", "REWARD_STATS", "ROLLOUTS"):
        env.pop(key, None)
    env.update(DATA_DIR=str(data), OUTPUT_DIR=str(root / "out"), REWARD_STATS=str(root / "stats.json"),
               JUDGE_BASE_URL="http://127.0.0.1:8000/v1", JUDGE_MODEL="med-judge", HF_HUB_OFFLINE="1",
               STUB_LOG=str(root / "stub.log"))
    return {"root": root, "data": data, "models": models, "stub": stub, "env": env}


def launch(setup, script, *overrides, python=None, **env):
    """Run a launcher with DRY_RUN=1; with the stub, returns the recorded python command lines."""
    log = Path(setup["env"]["STUB_LOG"])
    log.unlink(missing_ok=True)
    full_env = {**setup["env"], "DRY_RUN": "1", "PYTHON": python or str(setup["stub"]), **env}
    proc = subprocess.run(["bash", str(RECIPES / script), *overrides], env=full_env, capture_output=True,
                          text=True, cwd=REPO, timeout=120)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return proc, calls


def dry_run_in_process(calls, capsys):
    """Run the recorded `-m recipes.dry_run` call in-process, after the validation sample it reads
    (`-m recipes.pair_sample`): (exit code, resolved config, stderr)."""
    from recipes import pair_sample

    for argv in calls:
        if argv[:2] == ["-m", "recipes.pair_sample"]:
            assert pair_sample.main(argv[2:]) == 0
    (argv,) = [c for c in calls if c[:2] == ["-m", "recipes.dry_run"]]
    capsys.readouterr()
    rc = dry_run.main(argv[2:])
    out, err = capsys.readouterr()
    return rc, (yaml.safe_load(out) if out.strip() else None), err


def test_every_launcher_has_a_case():
    not_launchers = ("common.sh", "setup_gpu.sh")
    assert sorted(p.name for p in RECIPES.glob("*.sh") if p.name not in not_launchers) == sorted(LAUNCHERS)


@pytest.mark.parametrize("script", sorted(LAUNCHERS))
def test_launcher_dry_run(setup, script, capsys):
    kind, patch, strategy = LAUNCHERS[script]
    # the test clips are at 1 fps, which the Megatron engine refuses unless told (test_megatron_* below)
    fence = ["medgrpo.megatron.allow_wrong_video_timing=true"] if strategy == "megatron" else []
    proc, calls = launch(setup, script, "data.train_batch_size=16", *fence, MODEL_PATH=str(setup["models"][patch]))
    assert proc.returncode == 0, proc.stderr
    rc, cfg, err = dry_run_in_process(calls, capsys)
    assert rc == 0, err
    assert "OK:" in err
    data = setup["data"]
    assert cfg["data"]["train_batch_size"] == 16  # "$@" reaches Hydra, after the launcher's own overrides
    assert cfg["data"]["image_patch_size"] == cfg["medgrpo"]["video"]["image_patch_size"] == patch
    assert cfg["trainer"]["nnodes"] == 1 and cfg["trainer"]["n_gpus_per_node"] == 8
    if kind == "sft":
        assert cfg["model"]["path"] == str(setup["models"][patch])
        assert cfg["data"]["train_files"] == str(data / "sft_train.parquet")
        assert cfg["data"]["video_key"] == "videos" and cfg["data"]["messages_key"] == "messages"
        assert cfg["data"]["apply_chat_template_kwargs"]["processor_kwargs"]["do_sample_frames"] is False
        assert "hf_model" in cfg["checkpoint"]["save_contents"]
        return
    arr, reward = cfg["actor_rollout_ref"], cfg["medgrpo"]["reward"]
    assert cfg["algorithm"]["adv_estimator"] == "grpo" and cfg["algorithm"]["use_kl_in_reward"] is False
    assert arr["rollout"]["name"] == "vllm" and arr["rollout"]["n"] == 4
    assert arr["actor"]["use_kl_loss"] is True and arr["actor"]["kl_loss_type"] == "low_var_kl"
    assert arr["actor"]["kl_loss_coef"] == 0.01 and arr["actor"]["optim"]["lr"] == 1e-6
    assert arr["actor"]["strategy"] == strategy
    assert arr["model"]["path"] == str(setup["models"][patch])
    assert cfg["reward"]["reward_manager"] == {**cfg["reward"]["reward_manager"], "source": "importlib",
                                               "name": "MedGRPORewardManager"}
    assert cfg["reward"]["reward_manager"]["module"]["path"] == "pkg://reward_fns.manager"
    assert cfg["data"]["train_files"] == str(data / "rl_train.parquet")
    assert cfg["data"]["video_key"] == "videos"
    assert cfg["data"]["mm_processor_kwargs"] == cfg["medgrpo"]["processor_kwargs"]
    assert cfg["ray_kwargs"]["ray_init"]["runtime_env"]["env_vars"]["PYTHONPATH"] == f"{REPO}:$PYTHONPATH"
    if script != "calibrate_reward_stats.sh":  # the medgrpo_sync trainer, imported in every Ray process
        assert cfg["trainer"]["v1"]["trainer_mode"] == "medgrpo_sync" and "trainer: medgrpo_sync (" in err
        modules = cfg["ray_kwargs"]["ray_init"]["runtime_env"]["env_vars"]["VERL_USE_EXTERNAL_MODULES"]
        assert modules.split(",")[-2:] == ["evaluation.backends.vllm_fixes", "recipes.ext.trainer"]
    assert reward["tasks"]["NAP"] is False and reward["tasks"]["DVC"] is True
    assert reward["judge"]["base_url"] == "http://127.0.0.1:8000/v1" and reward["judge"]["model"] == "med-judge"
    assert reward["judge"]["api_key_env"] == "OPENAI_API_KEY"
    if script == "calibrate_reward_stats.sh":
        assert reward["normalization"]["enabled"] is False
        assert "evaluation.infer" in proc.stdout and "reward_fns.calibrate" in proc.stdout
    else:
        assert reward["normalization"] == {**reward["normalization"], "enabled": True,
                                           "stats_path": setup["env"]["REWARD_STATS"]}
    if strategy == "megatron":
        assert cfg["model_engine"] == "megatron" and arr["actor"]["megatron"]["use_mbridge"] is True


@pytest.mark.slow  # a launcher subprocess (10-16 s)
def test_end_to_end_dry_run_with_real_python(setup):
    proc, _ = launch(setup, "qwen25vl_7b_medgrpo.sh", "actor_rollout_ref.rollout.n=2", python=sys.executable,
                     MODEL_PATH=str(setup["models"][14]))
    assert proc.returncode == 0, proc.stderr
    cfg = yaml.safe_load(proc.stdout)
    assert cfg["algorithm"]["adv_estimator"] == "grpo" and cfg["actor_rollout_ref"]["rollout"]["n"] == 2
    assert "[validate_config] All configuration checks passed" in proc.stderr


@pytest.mark.slow  # a launcher subprocess (10-16 s)
def test_misspelt_key_fails_with_hydra_error(setup):
    proc, _ = launch(setup, "qwen25vl_7b_medgrpo.sh", "actor_rollout_ref.actor.optim.lrr=1",
                     python=sys.executable, MODEL_PATH=str(setup["models"][14]))
    assert proc.returncode != 0
    assert "Could not override 'actor_rollout_ref.actor.optim.lrr'" in proc.stderr
    assert "Key 'lrr' is not in struct" in proc.stderr


@pytest.mark.slow  # a launcher subprocess (10-16 s)
def test_converter_output_passes_dry_run(setup, tmp_path, capsys):
    """The toy generator + converter output, prepared with the recipes' VideoSpec, dry-runs cleanly."""
    raw, data = tmp_path / "raw", tmp_path / "data"
    steps = (["testbed.toy", "--out", str(raw), "--per-qa-type", "1"],
             ["data_preprocess.medvidbench", "--input", str(raw / "medvidbench_toy.json"), "--out-dir", str(data),
              "--val-fraction", "0.3", "--video-spec", str(RECIPES / "config" / "medgrpo_video.yaml")])
    for step in steps:
        proc = subprocess.run([sys.executable, "-m", *step], env={**os.environ, "PYTHONPATH": str(REPO)},
                              capture_output=True, text=True, cwd=REPO, timeout=120)
        if proc.returncode:  # another module's failure; its own tests report it
            pytest.skip(f"{step[0]} failed: {proc.stderr[-400:]}")
    write_stats(tmp_path / "stats.json", data)
    for script in ("qwen25vl_7b_medgrpo.sh", "qwen25vl_7b_sft.sh"):
        _, calls = launch(setup, script, MODEL_PATH=str(setup["models"][14]), DATA_DIR=str(data),
                          REWARD_STATS=str(tmp_path / "stats.json"))
        rc, _, err = dry_run_in_process(calls, capsys)
        assert rc == 0, err


def test_missing_data_file_names_the_path(setup, tmp_path, capsys):
    _, calls = launch(setup, "qwen25vl_7b_sft.sh", MODEL_PATH=str(setup["models"][14]), DATA_DIR=str(tmp_path))
    rc, _, err = dry_run_in_process(calls, capsys)
    assert rc == 1
    assert f"data.train_files: file not found: {tmp_path / 'sft_train.parquet'}" in err


def test_missing_stats_file_names_the_path(setup, tmp_path, capsys):
    stats = tmp_path / "nope.json"
    _, calls = launch(setup, "qwen3vl_4b_medgrpo.sh", MODEL_PATH=str(setup["models"][16]), REWARD_STATS=str(stats))
    rc, _, err = dry_run_in_process(calls, capsys)
    assert rc == 1 and f"file not found: {stats}" in err and "calibrate_reward_stats.sh" in err


@pytest.mark.parametrize(("overrides", "message"), [
    (["medgrpo_model=qwen3_vl"], "vision patch_size 14, but medgrpo.video.image_patch_size is 16"),
    (["medgrpo.video.max_pixels=50176"], "the data was prepared with another VideoSpec (max_pixels"),
    (["actor_rollout_ref.rollout.n=1"], "GRPO needs actor_rollout_ref.rollout.n >= 2"),
    (["actor_rollout_ref.actor.use_dynamic_bsz=false"], "verl validate_config: InstantiationException"),
    (["+medgrpo.reward.tasks.XYZ=true"], "unknown task(s) ['XYZ']"),
])
def test_inconsistent_settings_fail(setup, capsys, overrides, message):
    _, calls = launch(setup, "qwen25vl_7b_medgrpo.sh", *overrides, MODEL_PATH=str(setup["models"][14]))
    rc, _, err = dry_run_in_process(calls, capsys)
    assert rc == 1 and message in err, err


def test_stats_must_cover_the_data(setup, tmp_path, capsys):
    stats = json.loads(Path(setup["env"]["REWARD_STATS"]).read_text())
    source = sorted(stats["stats"])[0]
    del stats["stats"][source]
    (tmp_path / "partial.json").write_text(json.dumps(stats))
    _, calls = launch(setup, "qwen25vl_7b_medgrpo.sh", MODEL_PATH=str(setup["models"][14]),
                      REWARD_STATS=str(tmp_path / "partial.json"))
    rc, _, err = dry_run_in_process(calls, capsys)
    assert rc == 1 and "medgrpo.reward vs data" in err and source in err


def test_emitted_reward_config_feeds_calibrate(setup, tmp_path, capsys):
    from reward_fns.calibrate import _load_config

    _, calls = launch(setup, "calibrate_reward_stats.sh", MODEL_PATH=str(setup["models"][14]))
    (argv,) = [c for c in calls if c[:2] == ["-m", "recipes.dry_run"]]
    out = tmp_path / "reward.yaml"
    assert dry_run.main([*argv[2:], "--quiet", "--emit-reward-config", str(out)]) == 0
    settings = _load_config(str(out))
    assert settings.judge.model == "med-judge" and settings.tasks["NAP"] is False


def test_multi_node_needs_a_ray_cluster(setup):
    proc, calls = launch(setup, "qwen25vl_7b_medgrpo.sh", MODEL_PATH=str(setup["models"][14]), NNODES="2",
                         DRY_RUN="0")
    assert proc.returncode == 2 and "RAY_ADDRESS" in proc.stderr and calls == []
    proc, calls = launch(setup, "qwen25vl_7b_sft.sh", MODEL_PATH=str(setup["models"][14]), NNODES="2",
                         DRY_RUN="0", RAY_ADDRESS="10.0.0.1:6379", PREFLIGHT="0")
    assert proc.returncode == 0, proc.stderr
    (argv,) = calls
    assert argv[:2] == ["-m", "verl.trainer.sft_trainer_ray"] and "trainer.nnodes=2" in argv


def test_rl_launcher_requires_model_path(setup):
    proc, calls = launch(setup, "qwen25vl_7b_medgrpo.sh")
    assert proc.returncode != 0 and "set MODEL_PATH to the SFT model" in proc.stderr and calls == []


# ---- the processor kwargs of the composed configs reach transformers through verl's datasets ----
def _tiny_qwen25vl_processor():
    """Tiny Qwen2.5-VL tokenizer + processor with the shipped video bounds (128*28*28 .. 768*28*28)."""
    from testbed.tiny_qwen import build_processor, build_tokenizer

    tokenizer = build_tokenizer()
    return tokenizer, build_processor(tokenizer, min_pixels=128 * 28 * 28, max_pixels=768 * 28 * 28)


def _frame_pixels(grid, patch=14):
    _, h, w = (int(v) for v in grid[0])
    return h * patch * w * patch


@pytest.fixture(scope="module")
def tiny_processor():
    return _tiny_qwen25vl_processor()


def test_rl_dataset_keeps_videospec_frame_sizes(setup, tiny_processor, tmp_path, monkeypatch):
    import datasets
    from omegaconf import OmegaConf
    from verl.utils.dataset.rl_dataset import RLHFDataset
    from verl.utils.tokenizer.tokenizer import build_multimodal_processor_inputs

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf"))
    tokenizer, processor = tiny_processor
    train = str(setup["data"] / "rl_train.parquet")
    cfg = dry_run.compose("medgrpo_grpo", ["data.filter_overlong_prompts_workers=1"],
                          values={"data.train_files": train, "data.cache_dir": str(tmp_path / "verl")})
    OmegaConf.resolve(cfg)
    ds = RLHFDataset(train, tokenizer, cfg.data, processor=processor)
    import pyarrow.parquet as pq

    # nothing dropped by filter_overlong_prompts (a processor error there drops the row)
    assert len(ds) == pq.ParquetFile(train).metadata.num_rows > 0
    messages = ds._build_messages(dict(ds.dataframe[0]), key="prompt")
    images, videos, audios = ds._process_multi_modal_info(messages, ds.image_patch_size, ds.config)
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    out = build_multimodal_processor_inputs(processor, text=[text], images=images, videos=videos, audio=audios,
                                            mm_processor_kwargs=ds.mm_processor_kwargs)
    assert 8 * 28 * 28 <= _frame_pixels(out["video_grid_thw"]) <= 48 * 28 * 28


def test_sft_dataset_keeps_videospec_frame_sizes(setup, tiny_processor):
    from omegaconf import OmegaConf
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    tokenizer, processor = tiny_processor
    train = str(setup["data"] / "sft_train.parquet")
    cfg = dry_run.compose("medgrpo_sft", values={"data.train_files": train})
    OmegaConf.resolve(cfg)
    ds = MultiTurnSFTDataset(train, tokenizer, cfg.data, processor=processor, max_samples=2)
    for i in range(len(ds)):
        grid = ds[i]["multi_modal_inputs"]["video_grid_thw"]
        assert 8 * 28 * 28 <= _frame_pixels(grid) <= 48 * 28 * 28


# ---- secrets never printed (issue 21, item 10) --------------------------------------------------
SECRET_KEY, SECRET_PASSWORD = "sk-live-0123456789abcdefXYZ", "hunter2-pw"


def test_dry_run_never_prints_an_api_key_or_a_url_password(setup, capsys):
    """A YAML `api_key` (an unknown key: rejected) and a base_url password: neither appears in the
    printed config nor in the messages; the config shows [REDACTED] in their place."""
    url = f"https://judge-user:{SECRET_PASSWORD}@judge.example.org/v1"
    _, calls = launch(setup, "qwen25vl_7b_medgrpo.sh", f"+medgrpo.reward.judge.api_key={SECRET_KEY}",
                      MODEL_PATH=str(setup["models"][14]), JUDGE_BASE_URL=url)
    rc, cfg, err = dry_run_in_process(calls, capsys)
    assert rc == 1 and "unknown key(s) ['api_key']" in err  # rejected, after the config was printed
    judge = cfg["medgrpo"]["reward"]["judge"]
    assert judge["api_key"] == "[REDACTED]" and judge["api_key_env"] == "OPENAI_API_KEY"  # a NAME stays
    assert judge["base_url"] == "https://[REDACTED]@judge.example.org/v1"
    printed = yaml.safe_dump(cfg) + err
    assert SECRET_KEY not in printed and SECRET_PASSWORD not in printed


def test_redaction_rules():
    from recipes.redact import redact_config, redact_text

    assert redact_text("postgres://u:p4ss@db:5432/x and http://host/v1") == "postgres://[REDACTED]@db:5432/x and " \
                                                                           "http://host/v1"
    assert redact_text("Authorization: Bearer abcdef123456") == "Authorization: Bearer [REDACTED]"
    config = {"a": {"password": "x1", "token": "t0k3n", "max_tokens": 128, "api_key_env": "MY_KEY",
                    "secret": None, "list": ["sk-abcdefgh12345678", 3]}}
    assert redact_config(config) == {"a": {"password": "[REDACTED]", "token": "[REDACTED]", "max_tokens": 128,
                                           "api_key_env": "MY_KEY", "secret": None,
                                           "list": ["[REDACTED]", 3]}}
