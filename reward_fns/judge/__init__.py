"""The medical LLM judge (spec section 5): chat client, prompt, reply parser, injection guard, cache."""

from reward_fns.judge.cache import JudgeCache, cache_key
from reward_fns.judge.chat import ChatClient, ChatError, Completion, Usage
from reward_fns.judge.client import JudgeConfig, JudgeResult, MedicalJudge
from reward_fns.judge.injection import detect_injection
from reward_fns.judge.prompt import PROMPT_VERSION, build_messages
from reward_fns.judge.reply import JudgeReply, parse_reply

__all__ = [
    "PROMPT_VERSION",
    "ChatClient",
    "ChatError",
    "Completion",
    "JudgeCache",
    "JudgeConfig",
    "JudgeReply",
    "JudgeResult",
    "MedicalJudge",
    "Usage",
    "build_messages",
    "cache_key",
    "detect_injection",
    "parse_reply",
]
