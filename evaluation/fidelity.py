"""Where this scorer deliberately differs from the public leaderboard scorer (spec 4b "deviations").

The public scorer's behaviour is the contract except where it crashes, overflows or returns a
non-number; there this project keeps scoring and says so here. `DEVIATIONS` (the rule-based columns)
is written into `settings.deviations` of every metrics.json, `JUDGE_DEVIATIONS` (the leaderboard's
judge protocol, spec 5a) into `settings.judge_settings.deviations` when that protocol ran; both are
documented in docs/evaluation.md.
"""

from __future__ import annotations

DEVIATIONS: dict[str, str] = {
    "long_numbers": "a number longer than Python's int() accepts (4,300 digits) is 'not predicted' "
                    "(CVS component, SA aspect, STG fallback box, TAG H:M:S span); the public scorer crashes",
    "cvs_sa_float_overflow": "a CVS or SA score too large for a float is 'not predicted'; the public scorer "
                             "crashes averaging its error",
    "stg_non_finite": "a NaN or infinite STG coordinate scores that box 0; the public scorer turns the whole "
                      "STG column into NaN",
    "stg_beyond_int64": "STG fallback coordinates beyond 64-bit integers are computed exactly; the public "
                        "scorer overflows and returns garbage",
    "dvc_overflow": "a DVC event whose time is too large for a float, or whose frame number does not fit a "
                    "64-bit integer, is dropped; the public scorer crashes and loses the DVC columns",
    "tag_hms_overflow": "a TAG 'H:M:S to H:M:S' span whose seconds overflow a float is dropped; the public "
                        "scorer crashes",
    "unicode_surrogates": "lone surrogates in an answer are replaced by '?' before MiniLM embeds it (NAP "
                          "snapping, similarity); the public scorer's tokenizer call fails",
}
JUDGE_DEVIATIONS: dict[str, str] = {
    "all_failed_null": "a VS or RC column whose every pair failed is null (the public scorer silently reports "
                       "MiniLM similarity)",
    "repeated_prompt_once": "a prompt that occurs several times (one DVC pair at several thresholds) is asked once "
                            "(temperature 0)",
    "slot_wait_not_timed": "waiting for a concurrency slot does not count against the 30 s per attempt",
}
