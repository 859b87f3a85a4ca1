"""Two scripted caption "models" on the project's OpenAI-compatible test server (tests, benchmark, demo).

Each `FakeCaptionModel` plays both roles, telling them apart by the system prompt: as writer it
returns `{"captions": [...]}` with as many captions as asked ("draft k" = the k-th attempt, counted
from the feedback turns; with `paragraph_as_list` a one-caption reply is a list of three sentences);
as reviewer it follows the directive written in the item's question,
`[review: <script>]`, and accepts when there is none. Scripts:
`accept`, `reject_then_fix` (accepts only a second draft), `reject_always`, `malformed_once`
(first review of a request unreadable, then accept), `malformed_always`, `only-<model>-rejects`
(that model rejects every caption, the other accepts). Faults come from the server's `FaultPlan`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from testbed.judge_server import JudgeTestServer

_DIRECTIVE = re.compile(r"\[review:\s*([\w\-]+)\]")
_COUNT = re.compile(r"exactly (\d+) caption")
UNREADABLE_REVIEW = "Looks mostly fine to me, good work."


def _text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return str(content or "")


class FakeCaptionModel(JudgeTestServer):
    """A scripted writer + reviewer; `reviews` counts reviews per directive."""

    def __init__(self, model: str, paragraph_as_list: bool = False, **kwargs: Any):
        super().__init__(model=model, **kwargs)
        self.paragraph_as_list = paragraph_as_list  # a one-caption reply as a list of its sentences
        self.reviews: Counter[str] = Counter()
        self._seen: Counter[str] = Counter()

    def _reply(self, body: Mapping[str, Any], index: int) -> str:
        messages = [m for m in body.get("messages") or [] if isinstance(m, Mapping)]
        system = _text(messages[0]) if messages else ""
        user = _text(messages[1]) if len(messages) > 1 else ""
        if "reviewing captions" in system:
            return self._review(user)
        draft = 1 + sum(m.get("role") == "assistant" for m in messages)
        count = _COUNT.search(user)
        n = int(count.group(1)) if count else 1
        if n == 1 and self.paragraph_as_list:
            return json.dumps({"captions": [f"The {self.model} paragraph (draft {draft}) opens.",
                                            "It names the instruments.", "It closes the clip."]})
        return json.dumps({"captions": [f"The {self.model} caption {i} (draft {draft}) describes the annotated "
                                        f"step with the named instruments." for i in range(1, n + 1)]})

    def _review(self, user: str) -> str:
        found = _DIRECTIVE.search(user)
        script = found.group(1) if found else "accept"
        self.reviews[script] += 1
        self._seen[user] += 1
        if script == "reject_then_fix":
            accept = "(draft 2)" in user
        elif script == "reject_always":
            accept = False
        elif script == "malformed_always" or (script == "malformed_once" and self._seen[user] == 1):
            return UNREADABLE_REVIEW
        elif script.startswith("only-") and script.endswith("-rejects"):
            accept = script != f"only-{self.model}-rejects"
        else:
            accept = True
        problems = [] if accept else ["The caption names an instrument the facts do not list."]
        return json.dumps({"accept": accept, "problems": problems})
