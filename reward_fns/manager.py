"""MedGRPO reward manager for verl 0.9.1's reward loop.

Select it with
    reward.reward_manager.source=importlib
    reward.reward_manager.module.path=pkg://reward_fns.manager
    reward.reward_manager.name=MedGRPORewardManager
(or `source=register name=medgrpo` once this module is imported). Settings: `medgrpo.reward`
(see reward_fns/config.py). With `medgrpo.reward.judge.backend: verl` the judge requests go to the
`reward_router_address` verl hands the manager (reward_fns/judge/verl_backend.py). Every sample's
`reward_extra_info` carries what judging it took (`judge_*`: requests, HTTP calls, cache hits,
failures, injections, tokens, estimated USD cost from the configured prices).

A dead judge stops the run (reward_fns/judge/health.py): each manager sends one real judge request
when it is built (`judge.startup_check`) and raises `JudgeUnavailableError` if it fails; during
training, once `judge.max_failure_rate` of the last `judge.failure_window` judge requests failed,
`run_single` raises it (`judge.on_failure: abort`, verl then stops) or logs it and goes on with
similarity-only caption rewards (`on_failure: similarity`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

from verl import DataProto
from verl.experimental.reward_loop.reward_manager import register
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

from reward_fns.answer_reward import RewardOutcome
from reward_fns.build import build_scorer, load_reward
from reward_fns.judge.health import JudgeUnavailableError, judge_used, probe_judge
from reward_fns.judge.tally import JudgeTally, judge_tally
from reward_fns.judge.verl_backend import judge_config_for
from reward_fns.reference import Reference

logger = logging.getLogger(__name__)
TOTALS_LOG_EVERY_S = 60.0  # how often a worker logs its running judge totals


@register("medgrpo")
class MedGRPORewardManager(RewardManagerBase):
    """Decodes each response, routes it by task, and returns the normalized reward with a log."""

    def __init__(self, config: Any, tokenizer: Any, compute_score: Any = None,
                 reward_router_address: str | None = None, reward_model_tokenizer: Any = None, **_: Any):
        super().__init__(config, tokenizer, compute_score)
        settings, normalizer = load_reward(config)  # the dry run's validation too
        judge = judge_config_for(settings.judge, config, reward_router_address)
        self.settings = dataclasses.replace(settings, judge=judge)
        self.prices = judge.prices
        self.judge_totals, self._totals_logged = JudgeTally(), time.monotonic()
        self.scorer = build_scorer(self.settings, normalizer=normalizer)
        self.judge = self.scorer.captions.judge if self.scorer.captions is not None else None
        self._judge_down_logged = False
        self.probe_http_calls = 0  # the start-up probe's requests (not in any sample's judge_* counts)
        if self.judge is not None and judge.startup_check and judge_used(self.settings):
            self._probe_judge()

    def _probe_judge(self) -> None:
        """One real judge request before any scoring; JudgeUnavailableError when it fails."""
        started = time.monotonic()
        result = probe_judge(self.judge.config, self.judge.chat.base_url)
        self.probe_http_calls = result.http_calls
        where = f"{self.judge.config.model} at {self.judge.chat.base_url or 'api.openai.com'}"
        if not result.ok:
            raise JudgeUnavailableError(
                f"medgrpo reward worker: the judge ({where}) did not answer one request at start-up: {result.reason} "
                f"(check the endpoint, ${self.judge.config.api_key_env} on every node and the network from this "
                f"node; medgrpo.reward.judge.startup_check=false skips this check)")
        logger.info("medgrpo judge probe: %s answered in %.1f s", where, time.monotonic() - started)

    def _check_judge(self) -> None:
        """Stop (or warn, with on_failure=similarity) once the judge's recent failure rate is too high."""
        why = self.judge.health.failing() if self.judge is not None else None
        if why is None:
            self._judge_down_logged = False
            return
        if self.judge.config.on_failure == "abort":
            message = (f"medgrpo reward: the judge does not answer: {why}; stopping the run "
                       f"(medgrpo.reward.judge.on_failure=abort; set it to similarity to train on similarity-only "
                       f"caption rewards instead)")
            logger.error(message)
            raise JudgeUnavailableError(message)
        if not self._judge_down_logged:
            self._judge_down_logged = True
            logger.error("medgrpo reward: the judge does not answer: %s; caption rewards are similarity only "
                         "(medgrpo.reward.judge.on_failure=similarity)", why)

    def decode(self, data: DataProto, row: int) -> str:
        """The response text of one row (its valid tokens, special tokens dropped)."""
        response_ids = data.batch["responses"][row].tolist()
        valid = sum(data.batch["attention_mask"][row, -len(response_ids):].tolist())
        return self.tokenizer.decode(response_ids[:valid], skip_special_tokens=True)

    async def _score(self, response: str, ref: Reference) -> RewardOutcome:
        try:
            return await self.scorer.score(response, ref)
        except Exception as err:  # a scorer bug must not kill a multi-day run; it is logged loudly
            logger.exception("medgrpo reward: scoring failed for %s/%s", ref.data_source, ref.qa_type)
            return RewardOutcome("?", ref.data_source, 0.0, 0.0, False, reason=f"scoring error: {err!r}")

    async def run_single(self, data: DataProto) -> dict:
        self._check_judge()  # a judge found dead stops every later sample too
        row = len(data) - 1  # multi-sequence outputs: the last sequence carries the answer
        info = {key: values[row] for key, values in data.non_tensor_batch.items()}
        with judge_tally() as tally:
            try:
                ref = Reference.from_json(info["reward_model"]["ground_truth"])
            except (KeyError, TypeError, ValueError) as err:
                # a broken row is a data bug: say so loudly, but keep the run alive with a zero reward
                logger.error("medgrpo reward: unreadable ground truth for data_source=%s: %s",
                             info.get("data_source"), err)
                outcome = RewardOutcome("?", str(info.get("data_source")), 0.0, 0.0, False,
                                        reason=f"unreadable ground truth: {err}")
            else:
                outcome = await self._score(self.decode(data, row), ref)
        extra = {**outcome.extra_info(), **tally.metrics(self.prices)}
        self._log_totals(tally)
        self._check_judge()
        return {"reward_score": outcome.normalized, "reward_extra_info": extra}

    def _log_totals(self, tally: JudgeTally) -> None:
        """Add one sample's tally to this worker's totals; log them at most every TOTALS_LOG_EVERY_S."""
        self.judge_totals.add(tally)
        now = time.monotonic()
        if now - self._totals_logged >= TOTALS_LOG_EVERY_S:
            self._totals_logged = now
            totals = self.judge_totals.metrics(self.prices)
            logger.info("medgrpo judge totals (this worker): %s",
                        ", ".join(f"{key.removeprefix('judge_')}={value:g}" for key, value in totals.items()))
