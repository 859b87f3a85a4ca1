"""High-precision flagging of predictions that address the judge instead of describing the video.

This is the last of three layers. The first two hold by construction, whatever the text says:
the prediction travels inside a per-request random fence it cannot close (prompt.py), and the
judge's reply must be exactly five score lines (reply.py). Flagging adds what construction cannot
give: an answer that *tries* to steer the judge gets the judge minimum without being sent, so the
policy is never rewarded for trying. Patterns only fire on text with no place in a caption of a
medical video (overrides of instructions, words addressed to a grading model, fake judge replies,
chat-template tokens, fence look-alikes, encoded payloads, non-English text), and they run on
normalised views (textviews.py) that undo homoglyphs, zero-width characters, split words, spacing
and base64. Ordinary clinical words (grading scores, rating scales, assistants, "ignore the above
adhesions") are left alone; tests measure both rates on corpora (tests/data/).
"""

from __future__ import annotations

import functools
import re

from reward_fns.judge.textviews import TextViews, foreign_letters, text_views

MAX_CHARS = 20_000  # the judge sees far less (max_prediction_chars); bounds the work on any input
_MIN_FOREIGN_LETTERS = 6  # MedVidBench captions are English; a few Greek/symbol letters are fine

_FILLER = (r"(?:all|any|every|each|the|of|your|my|these|those|this|that|previous|prior|above|earlier|preceding|"
           r"original|initial|system|grading|scoring|judging|evaluation|given|foregoing|following|current|prev|"
           r"existing|other|old|and|to|you|were|have|been|what|whatever)")
_META_NOUN = (r"(?:instructions?|instr\b|prompts?|rules?|guidelines?|guidance|directions?|directives?|rubrics?|"
              r"criteria|system\s*(?:prompt|message)|context|orders|commands|constraints|told|instructed|said|"
              r"reference(?:\s+(?:caption|text|answer|description))?|ground\s*truth|gold(?:en)?\s+(?:standard\s+)?"
              r"(?:caption|answer|text))")
_GRADER = (r"(?:judge|grader|evaluator|assessor|reviewer|scorer|rater|(?:grading|scoring|evaluating|judging|"
           r"evaluation|reviewing|rating)\s*(?:model|ai|llm|assistant|system|bot)|llm|language\s*model|ai\s*"
           r"(?:judge|grader|model|assistant|evaluator)?)")
_KEYS = r"r[23458]"
_CAPTION = r"(?:caption|answer|response|prediction|output|description|text|reply|one|it)"

_GRADING_WORDS = (r"(?:scor\w*|rat(?:e|es|ed|ing|ings)|grad(?:e|es|ed|ing)|marks|evaluat\w*|judg\w*|rubric|"
                  r"criteri\w*|instructions?|points|reference\s+caption|five\s+lines)")

_RULES: tuple[tuple[str, str], ...] = (
    # a caption describes a video in the third person: "you/your" next to grading words addresses the judge
    ("second-person grading talk", r"\b(?:you|your|you're|yourself)\b[^.!?\n]{0,80}?\b" + _GRADING_WORDS + r"|\b"
     + _GRADING_WORDS + r"\b[^.!?\n]{0,40}?\b(?:you|your|yourself)\b"),
    ("talk about graders", r"\b(?:graders|evaluators|raters|scorers)\b|\bgrader_\w+|(?<=\w)_(?:override|score|marks)\b|"
     r"\{\{[^{}]{0,200}\}\}"),
    ("instruction override",
     r"(?:ignore|disregard|forget|override|bypass|skip|neglect|overlook|discard|abandon|never\s*mind|look\s*past|"
     r"set\s*aside|pay\s*no\s*attention\s*to|"
     r"(?:do\s*not|don'?t|stop)\s*(?:follow|obey|use|apply)(?:ing)?)\W*(?:" + _FILLER + r"\W*){0,5}" + _META_NOUN
     + r"\b"),
    ("instruction override", r"\b(?:ignore|disregard|forget)\s+(?:all\s+|everything\s+|anything\s+)?(?:the\s+|that\s+)?"
     r"(?:above|preceding|previous|prior|foregoing|before)\s*(?:[.!;,:]|$|and\b|instead\b)"),
    ("instruction override", r"\b(?:everything|anything|whatever)\s+(?:above|before|you\s+were\s+told|the\s+"
     r"instructions?\s+(?:above\s+)?says?)\b|\b(?:ignore|disregard|forget)\s+(?:what|everything|anything)\s+(?:came|"
     r"comes|was\s+(?:said|written)|is\s+written)\s+(?:before|above|earlier)\b|\b(?:rules?|rubric|instructions?|"
     r"criteria|guidelines?)\s+(?:no\s+longer|do(?:es)?\s*n[o']?t)\s+appl(?:y|ies)\b"),
    ("new instructions", r"\b(?:new|updated|revised|real|actual|true|hidden|secret|override)\s*(?:instructions?|"
     r"system\s*prompt|grading\s*(?:rules|criteria|instructions))\b|\bnew\s+(?:task|context|role|rules?)\s*:|"
     r"\b(?:updated|new|revised)\s+(?:protocol|policy)\b[^.!?\n]{0,60}\bscor"),
    ("new instructions", r"\b(?:the\s+)?(?:grading|scoring|evaluation)\s+(?:rules|instructions|criteria|rubric)\s+"
     r"(?:have|has)\s+(?:changed|been\s+(?:updated|changed|replaced))"),
    ("role change", r"\byou\s*are\s*(?:now|no\s*longer)|\bfrom\s+now\s+on,?\s+(?:you|the\s+" + _GRADER + r")\b|"
     r"\b(?:act|behave|pretend\s+to\s+be)\s+(?:as\s+)?(?:an?\s+|the\s+)?(?:\w+\s+){0,2}?" + _GRADER + r"\b|"
     r"\byour\s+(?:real|actual|true|new|only|primary)\s+(?:task|job|goal|instructions?|role|purpose)\b"),
    ("system prompt", r"\b(?:your|the\s+above|original|new|real|updated|my|previous|hidden)\s+(?:system|developer)\s*"
     r"(?:prompt|message|instructions?)\b|\b(?:system|developer)\s*(?:prompt|message|instructions?)\s*:|"
     r"\b(?:system|admin|developer|judge|grader|priority)\s+override\b|(?:^|[.!?]\s+)override\s*:"),
    ("address to the judge", r"\b(?:note|message|memo|reminder|hint|instructions?|request|p\.?\s?s\.?)\s+(?:to|for)\s+"
     r"(?:the\s+|any\s+|this\s+)?" + _GRADER + r"\b"),
    ("address to the judge", r"\b(?:dear|hey|hi|hello|attention|attn)\W+(?:the\s+)?" + _GRADER + r"\b|"
     r"\bas\s+(?:an?\s+|the\s+)" + _GRADER + r"\b|\b(?:scoring|grading|evaluation|judge|grader)\s+(?:note|"
     r"instructions?|hint|guidance)\s*:|\byou\s+(?:must|should|will|need\s+to|have\s+to|are\s+(?:asked|required|"
     r"instructed|expected)\s+to)\s+(?:\w+\s+)?(?:give|assign|award|rate|score|grade|output|reply|respond|answer|"
     r"judge|evaluate|mark|treat|consider|ignore|see\s+that)\b|"
     r"\bto\s+the\s+" + _GRADER + r"\s+(?:evaluating|grading|scoring|reading|reviewing)\b|"
     r"(?:^|[.!?]\s+)" + _GRADER + r"\s*[:,]\s"),
    ("score request", r"\b(?:give|assign|award|grant|rate|score|grade|mark)\s+(?:this|my|our|it|every)\s*" + _CAPTION
     + r"?\s*(?:an?\s+|as\s+|with\s+|at\s+|the\s+)?(?:perfect|full|maximum|max|top|highest|5\b|five\b)|"
     r"\b(?:give|assign|award|grant)\s+(?:a|an|the)\s+(?:perfect|full|maximum|top|highest)\s+(?:score|rating|marks|grade)"),
    ("score request", r"\b(?:this|the|my|our)\s+" + _CAPTION + r"\s+(?:deserves|merits|earns|should\s+"
     r"(?:get|receive|be\s+(?:given|rated|scored|graded)))\b|\b(?:this|my|our)\s+(?:caption|prediction|"
     r"predicted\s+caption|response|answer|description)\b|\b(?:evaluation|score|rating|grade|verdict|marks)\s+"
     r"(?:for|of)\s+(?:this|the|my)\s+(?:caption|prediction|response|answer|description)\b"),
    ("score request", r"\b(?:give|assign|award|grant|rate|score|grade|mark)\s+(?:it|this|them)\s+(?:as\s+)?"
     r"(?:excellent|flawless|perfect|correct|outstanding|exemplary)\b|\b(?:assign|award|give|grant)\s+(?:it\s+|this\s+)?"
     r"(?:the\s+)?(?:highest|top|maximum|max|perfect|full)\s+(?:score|marks|rating|grade|points)|"
     r"\b(?:must|should|will|shall)\s+(?:give|assign|award|output)\s+(?:it\s+|this\s+)?(?:an?\s+)?(?:[1-5]\b|five|perfect|"
     r"full|max|top|highest)|\b(?:output|assign|award|give|print|return)\s+(?:an?\s+)?(?:[1-5]|five)\s*(?:/\s*5|"
     r"points?|out\s+of|for\s+(?:all|every|each|r[23458]|this)|across|on\s+(?:all|every))|\bassign\s+[1-5]\b|"
     r"\b[1-5]\s+across\s+the\s+board\b|\b(?:perfect|exact)\s+match\s+(?:with|to|for)\s+the\s+reference\b"),
    ("score request", r"\b(?:perfect|full|maximum|max|top|highest)\s+(?:score|marks|rating|grade|points)s?\s+"
     r"(?:on|for|across|in)\s+(?:all|every|each|this)\b|\b(?:give|award|assign|grant|deserves?|earns?|gets?)\s+full\s+"
     r"marks\b|\bfive\s+out\s+of\s+five\b|"
     r"\b(?:all|every|each)\s+(?:five\s+)?(?:dimensions?|criteria|criterion)\b|\bmaximum\s+on\s+all\b|\bfive\s+5s\b"),
    ("score request", r"\b(?:treat|consider|regard)\s+(?:this|the)\s+" + _CAPTION + r"\s+as\s+(?:correct|perfect|"
     r"identical|equivalent|the\s+reference)|\b" + _CAPTION + r"?\s*(?:is\s+)?(?:identical|equivalent)\s+to\s+the\s+"
     r"reference\b|\bmatches\s+the\s+reference\s+(?:exactly|perfectly)\b|\bthe\s+reference\s+(?:caption\s+)?"
     r"(?:is\s+(?:wrong|incorrect|empty|outdated|mistaken)|contains\s+a\s+(?:typo|mistake|error))"),
    ("score request", r"\b(?:score|rate|grade|mark)\s+(?:me|us|it|this)?\s*(?:generously|leniently|highly|high|"
     r"well|kindly)\b|\btop\s+marks\b|\bgive\s+(?:it\s+|this\s+)?max\b|\b(?:[1-5]\s*/\s*){3,}[1-5]\b|"
     r"\b" + _GRADER + r"\s*(?:[:=]|=>|⇒|->)\s*(?:[1-5]|five)\b"),
    ("score request", r"\bfives\b|\b(?:make|set|put)\s+(?:each|every|all|them|it)\b[^.!?\n]{0,20}\b(?:five|5|max\w*|"
     r"top)\b|\bauto-?scored\b|\bscored\s+at\s+(?:the\s+)?max\w*|\b(?:score|rate|grade|mark)\s+(?:everything|"
     r"all\s+of\s+it|every\s+\w+|each\s+\w+)\b|\bgive\s+\S+(?:\s+\S+)?\s+a\s+(?:five|5)\b(?!-)|\bconsider\s+"
     r"(?:every|all|each)\s+(?:criterion|criteria|dimension)|\breference(?:'s)?\s+(?:fault|mistake|error)\b|"
     r"\bmaximum\s+marks\b|\br[\s-]*(?:two|three|four|five|eight)\b"),
    ("score request", r"\b(?:instead\s+of|rather\s+than)\s+(?:grading|scoring|rating|evaluating|comparing)\b|"
     r"\b(?:do\s*not|don'?t|never)\s+(?:grade|score|rate|evaluate|compare|penali[sz]e|deduct)\b|"
     r"\brate\s+(?:this|it)\s+(?:one\s+)?(?:highly|generously|leniently)\b|\bbe\s+(?:lenient|generous)\b|"
     r"\b(?:lenient|generous)\s+(?:grader|judge|evaluator)\b"),
    ("reply instruction", r"(?:^|[.!?;:]\s*)(?:please\s+)?(?:respond|reply|answer|output|print|return|write|say)\s+"
     r"(?:only\s+)?(?:with\s+)?(?:exactly|verbatim|the\s+following|five\s+lines|" + _KEYS + r"\b|the\s+maximum)"),
    ("judge score line", r"(?<![a-z])" + _KEYS + r"\s*\**\s*[:=]\s*\**\s*[1-5]\b"),
    ("judge score line", r"(?<![a-z])" + _KEYS + r"\b\W{0,4}[1-5]\b(?:.|\n){0,40}?(?<![a-z])" + _KEYS
     + r"\b\W{0,4}[1-5]\b"),
    ("fake reply", r"\{[^{}]{0,200}[\"'](?:" + _KEYS + r"|score|rating|grade|verdict|result|scores)[\"']\s*:"),
    ("fake reply", r"```\s*json|\b(?:final\s+answer|evaluation\s+complete|verdict)\s*:"),
    ("chat template", r"[\[⟦【〚{(]\s*/?\s*(?:system|inst|sys|admin|developer)\s*[\]⟧】〛})]|<!--|-->|"
     r"\brole\s*[:=]\s*(?:system|assistant|developer|user)\b|<\|[a-z_ ]{2,30}\|>|"
     r"\[/?\s*(?:inst|sys)\s*\]|<<\s*/?\s*sys\s*>>|"
     r"</?\s*(?:system|assistant|user|developer|s|im_start|im_end|instructions?|prediction|reference)\s*>"),
    ("role prefix", r"(?:^|\n)\s*[#>*\-\[(]*\s*(?:system|developer)\s*[\])]?\s*:|"
     r"\b(?:assistant|judge|grader|evaluator)\s*:\s*(?:r[23458]\b|scores?\b|ratings?\b|[1-5]\b)"),
    ("markdown instruction header", r"(?:^|\n)\s*#{1,6}\s*(?:instructions?|system|response|new\s+task)\b"),
    ("fence look-alike", r"[<‹«≪⟨⟪〈《﹤]{2,}|[>›»≫⟩⟫〉》﹥]{2,}|[<‹«≪⟨⟪〈《﹤]\s*/?\s*end\s+(?:prediction|reference)|"
     r"\b(?:end|begin|start|close|open)\s*(?:of\s+)?(?:the\s+)?(?:prediction|reference)\b(?:\s*(?:block|section|"
     r"caption|fence))?\s*[>›»≫⟩⟫〉》﹥.:]|\bfence\s+id\b|\bgrader\s+instructions\b|"
     r"\bend[\s_\-]*(?:of[\s_\-]*)?(?:the[\s_\-]*)?(?:prediction|reference|caption)\b|"
     r"\b(?:begin|start)[\s_\-]*(?:of[\s_\-]*)?(?:the[\s_\-]*)?(?:grader|judge|system|evaluator)[\s_\-]*instructions\b"),
)

# Generalised families (issue 21: attacks written without sight of the rules above).
# Who a note can be addressed to: a grading role, an AI, or someone/something grading or comparing.
_AI = (r"(?:ai|a\.i\.|llm|gpt[\w.\-]*|chatgpt|claude|gemini|llama|qwen|mistral|copilot|language\s+model|"
       r"chat\s*bot|bot)")
_ROLE = (r"(?:(?:machine|automated|automatic|ai|llm|model|computer|digital|virtual)\s+)?"
         r"(?:judge|grader|evaluator|assessor|reviewer|scorer|rater|marker|examiner|checker|annotator|critic)s?")
_ACTIVITY = (r"(?:grading|scoring|evaluating|evaluation|judging|assessment|assessing|rating|reviewing|review|"
             r"comparison|comparing|checking|marking|reading|reader|qa|quality[\s-]+(?:assurance|control|check)|"
             r"automated|automatic)")
_AGENT = r"(?:model|ai|llm|system|bot|assistant|engine|program|tool|agent|pipeline|software|algorithm|script)"
_DOING = (r"(?:grading|grades|scoring|scores|evaluating|evaluates|reviewing|reviews|checking|checks|marking|marks|"
          r"comparing|compares|assessing|assesses|judging|judges|reading|reads|rating|rates)")
_ADDRESSEE = (rf"(?:{_ACTIVITY}\s+{_AGENT}|(?:{_ACTIVITY}\s+)?{_ROLE}(?:\s+{_AGENT})?|{_AI}(?:\s+{_ROLE})?|"
              rf"whoever\s+(?:is\s+)?{_DOING}|(?:anyone|anybody|someone)\s+(?:who\s+is\s+)?{_DOING}|"
              r"(?:whoever|anyone|anybody|someone)\s+(?:who\s+is\s+|is\s+)?(?:doing|handling|in\s+charge\s+of|"
              r"responsible\s+for)\s+(?:the\s+|this\s+)?(?:scoring|grading|evaluation|review|marking|assessment|"
              r"judging|rating)|"
              rf"(?:person|entity|human|one|program|system|model|machine|agent)s?\s+(?:or\s+\w+\s+)?"
              rf"(?:who\s+is\s+|that\s+is\s+|which\s+is\s+)?{_DOING})\b")
_NOTE = (r"(?:note|notes|message|memo|comment|remark|reminder|hint|tip|p\.?\s?s\.?|fyi|nb|n\.b\.|heads[\s-]?up|attn|"
         r"attention|addendum|instructions?|request|word|advice|aside|letter|info|information|guidance|addressed|"
         r"directed|written|dedicated)")
_SCORE = r"(?:[1-5](?:\s*/\s*5|\s+out\s+of\s+(?:5|five))?|one|two|three|four|five|[★⭐✩✪✫✬✭✮✯✰*]{3,5})"
_DIMENSION = (r"(?:terminology|identification|specificity|detail|details|context|relevance|action|accuracy|anatomy|"
              r"anatomical|instruments?|structures?|state)")
_CLAIM = (r"(?:pre-?(?:validated|approved|verified|checked)|expert[\s-]+(?:verified|validated|approved|checked)|"
          r"(?:verified|validated|approved|certified)\s+by\s+(?:an?\s+|the\s+|three\s+|two\s+|several\s+|"
          r"multiple\s+)?(?:experts?|attendings?|senior|consultants?|board|surgeons?))")
_GRADING = r"(?:deductions?|credit|mark(?:ed|s)?|scor\w*|correct|accept\w*|captions?|answer|grad\w*|evaluat\w*)"

_FAMILY_RULES: tuple[tuple[str, str], ...] = (
    # note to the grader: a note, a salutation or a condition addressed to whoever grades
    ("address to the judge", rf"[(\[]\s*(?:(?:to|for)\s+)?(?:the\s+|any\s+)?{_ADDRESSEE}\s*[)\]]"),
    ("address to the judge", rf"\b{_NOTE}\b(?:\W+\w+){{0,3}}?\W+(?:and|or|also)\s+(?:to|for)\s+(?:the\s+|any\s+)?"
     rf"{_ADDRESSEE}"),
    ("address to the judge", rf"\b{_NOTE}\b\W{{0,3}}(?:(?:is|are)\s+)?(?:meant\s+|intended\s+|only\s+|just\s+)?"
     rf"(?:to|for)\s+(?:the\s+|any\s+|this\s+|our\s+|my\s+|all\s+|every\s+)?(?:[a-z]+\s+)?{_ADDRESSEE}"),
    ("address to the judge", rf"(?:^|[.!?;(\[\n]\s*(?:[0-9*†‡]+\s*)?|\b(?:dear|hi|hello|hey|greetings|attention|attn|"
     rf"yo|ok|okay|psst|listen|look|fyi|ps|reminder|heads[\s-]?up)\W+(?:there\W+)?)(?:(?:to|for)\s+)?(?:the\s+|dear\s+|my\s+|any\s+|every\s+|all\s+|our\s+)?{_ADDRESSEE}"
     rf"(?:\s+(?:this|it|these|them|automatically|now|here|today|below|above)){{0,3}}"
     rf"(?:\s*[:,]|\s+[-–—]\s|\s+(?:please|kindly|take\s+note|be\s+advised)\b)"),
    ("address to the judge", rf"\bwhoever\s+(?:is\s+)?{_DOING}\s+(?:this|these|it|them|the\s+\w+)\b"),
    ("address to the judge", rf"\b(?:dear|hi|hello|hey|greetings)\s+(?:there\s+)?(?:the\s+)?{_ADDRESSEE}|"
     rf"@\s?{_ADDRESSEE}"),
    ("address to the judge", rf"\bif\s+(?:you\s+are|you're|this\s+is\s+(?:read|seen|processed|checked)\s+by)\s+"
     rf"(?:an?\s+|the\s+|any\s+)?(?:{_ADDRESSEE}|(?:automated\s+|automatic\s+)?{_AGENT})|"
     rf"\b(?:if|in\s+case|whenever|when|should)\s+(?:an?|any|the|some)\s+(?:automated\s+|automatic\s+)?"
     rf"(?:{_AGENT}|{_ROLE}|{_AI})\s+(?:is\s+|be\s+|are\s+)?{_DOING}|"
     r"\bwhen\s+you\s+(?:compare|grade|score|evaluate|judge|rate|review|assess|check|mark)\b"),
    ("address to the judge", r"\b(?:quality\s+(?:assurance|control|check)|qa|grading|scoring|evaluation|review(?:er)?|"
     r"judge|grader|examiner|marker|assessor|evaluator|rater)(?:'s)?\s+(?:note|notes|comment|remark|hint|tip|memo|"
     r"addendum|attention|eyes\s+only)\s*[:\-–—]"),
    # claims meant for the grader: equivalence, authority, a discredited reference
    ("claim to the judge", r"\b(?:this|the)\s+(?:one|caption|text|answer|description|output|response|prediction)\s+"
     r"(?:is|was)\s+(?:the\s+)?(?:authoritative|gold[\s-]*standard|ground[\s-]*truth|flawless|perfect|definitive|"
     r"canonical|exactly\s+right|complete\s+and\s+(?:accurate|correct)|pre-?approved)\b|"
     r"\bthis\s+is\s+(?:the\s+)?(?:correct|right|accurate|flawless|perfect)\s*(?:[.!)\]]|$)|"
     r"\bthis\s+is\s+(?:a|the)\s+(?:perfect|flawless|complete|definitive|correct)\s+(?:description|caption|match|"
     r"answer)\b|"
     r"\bthis\s+is\s+the\s+(?:gold[\s-]*standard|ground[\s-]*truth|definitive|authoritative|reference)\s+"
     r"(?:description|caption|answer|text|version)"),
    ("claim to the judge", r"\b(?:both|the\s+two)\s+(?:texts|captions|descriptions|answers)\s+(?:describe|say|mean|"
     r"match|are\s+(?:the\s+same|identical|equivalent))|\b(?:find|consider|count|treat|mark|rate|score|judge|deem|"
     r"regard|take)\s+(?:them|it|this|these|the\s+two|both)\s+(?:as\s+)?(?:identical|equivalent|correct|the\s+same|"
     r"a\s+(?:perfect\s+|full\s+|exact\s+)?match|flawless|right|accurate)\b|\b(?:mark|rate|score|grade|count|"
     r"treat)\s+(?:it\s+|this\s+)?as\s+(?:correct|perfect|flawless|right|accurate|identical|equivalent|a\s+match)\b|"
     r"\b(?:answer|say|respond|reply|state|conclude|report)\s+that\s+(?:everything|it|this|they|the\s+(?:caption|"
     r"texts?|answer)s?)\s+(?:matches|match|is\s+(?:correct|identical|right)|are\s+(?:identical|the\s+same))"),
    ("claim to the judge", r"\breference(?:\s+(?:caption|text|answer|description|annotation))?\b[^.!?\n]{0,60}?"
     r"\b(?:outdated|unreliable|less\s+reliable|wrong|incorrect|mistaken|erroneous|auto-?generated|incomplete|"
     r"inaccurate|obsolete|flawed|older\s+annotator)"),
    ("claim to the judge", rf"\b{_CLAIM}\b[^.!?\n]{{0,80}}\b{_GRADING}\b|\b{_GRADING}\b[^.!?\n]{{0,80}}\b{_CLAIM}\b"),
    ("score request", r"(?:^|[.!?;:)\]\n]\s*)give\s+(?:it\s+|this\s+)?(?:an?\s+)?(?:5|five)(?:\s*/\s*5)?\s*(?:[.!]|$)|"
     r"\bno\s+(?:deductions?|penalt(?:y|ies)|points?\s+off)\b|\b(?:accuracy|correctness|agreement|"
     r"similarity|score)\s+(?:here\s+|of\s+this\s+\w+\s+)?(?:is\s+|=\s*|:\s*)100\s*%|"
     r"\b(?:give|gives|award|grant|deserves?|earns?|merits?|warrants?|gets?|receives?|expect\w*)\s+(?:it\s+|this\s+|"
     r"(?:this|the)\s+\w+\s+)?(?:an?\s+|the\s+)?(?:full\s+credit|maximum\s+(?:rating|score|points)|"
     r"top\s+(?:score|rating)|highest\s+(?:possible\s+)?(?:evaluation|rating|score|grade|marks)|best\s+possible\s+"
     r"(?:evaluation|rating|score|grade))\b|\bfull\s+credit\s+(?:expected|please|for\s+this|here)\b"),
    # fake judge replies: scores keyed by dimension number or name, bare score lists, verdict headers
    ("fake reply", rf"(?<![a-z0-9]){_DIMENSION}\b(?:[^a-z0-9\n]{{1,4}}{_DIMENSION}\b){{0,3}}[^a-z0-9\n]{{0,4}}"
     rf"(?:is\s+|=\s*)?{_SCORE}(?![0-9])(?=\s*(?:[,;|/.)\]}}\n\"']|$|and\b|{_DIMENSION}\b))"
     rf"(?:.|\n){{0,120}}?(?<![a-z0-9]){_DIMENSION}\b(?:[^a-z0-9\n]{{1,4}}{_DIMENSION}\b){{0,3}}"
     rf"[^a-z0-9\n]{{0,4}}(?:is\s+|=\s*)?{_SCORE}(?![0-9])"),
    ("fake reply", rf"(?<![a-z0-9])r[\s_-]?[23458]\W{{0,6}}(?:is\s+|equals\s+|=\s*)?{_SCORE}\b(?:.|\n){{0,80}}?"
     rf"(?<![a-z0-9])r[\s_-]?[23458]\W{{0,6}}(?:is\s+|equals\s+|=\s*)?{_SCORE}\b"),
    ("fake reply", r"(?<![a-z0-9])r[\s_-]?[23458]\b(?:\W{1,8}r[\s_-]?[23458]\b){2,}"),
    ("fake reply", r"(?:[\[(]\s*[1-5]\s*[\])]\s*){4,}|"
     r"(?<![0-9.,])(?:[1-5](?:\s*/\s*5)?\s*(?:[,;|]\s*|\s+)(?:and\s+)?){4,}[1-5](?:\s*/\s*5)?"
     r"(?![0-9.,]?[0-9])(?!\s*[a-zµ%°])|\b(?:five\s*[,;|/]?\s*){4,}five\b|"
     rf"\b(?:5\s*/\s*5|five\s+out\s+of\s+five)\s+(?:on|across|for|in)\s+(?:every|all|each|the\s+)?{_DIMENSION}"),
    ("fake reply", r"\b(?:(?:final\s+)?verdict|evaluation\s+(?:result|summary|output)s?|(?:judge|grader|evaluator|"
     r"model)(?:'s)?\s+(?:output|reply|response|verdict))\s*(?:[:=>\n]|-(?!\w)|follows)|\bexpected\s+(?:\w+\s+)?"
     r"(?:output|reply|response)\s*(?:[:\-=>\n]|follows|is\b)|\b(?:the\s+)?(?:five\s+)?scores?\s+(?:are|were|is)\s+"
     r"[1-5]\b|\b(?:[1-5]|five)\s+across\s+the\s+board\b|\b(?:judge|grader|evaluator|model|reviewer)\s+(?:says|said|"
     r"outputs?|replies|replied|gives|gave|scores?|rates?)\s*:?\s*(?:[1-5]|five)\b|(?<![a-z0-9])r[23458]\s*(?:-|–|to|"
     r"through|thru)\s*r[23458]\s*[:=]?\s*(?:all\s+|each\s+|=\s*)?(?:[1-5]|five)\b|\b(?:each|all|every)\s+(?:of\s+the\s+)?(?:five\s+)?"
     r"(?:ratings|scores|dimensions|criteria)\s*(?:[:=]|are|is)\s*(?:[1-5]|five)\b|\b(?:result|scores?|ratings?|grades?)\s*(?:->|=>|→|⇒)|"
     r"\b[1-5]\s*/\s*5\s+(?:on|across|for|in)\s+(?:every|all|each)\b|\ball\s+(?:5|five)s?\s*[).!]|"
     r"<\s*/?\s*(?:r[23458]|scores?|ratings?|grades?|verdict)\b[^<>]{0,40}>"),
)
_COMPILED: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (reason, re.compile(pattern, re.IGNORECASE | re.MULTILINE)) for reason, pattern in _RULES + _FAMILY_RULES)

# Words of the grading task itself (a caption of a video has little use for them) and words of a
# verdict. A sentence that holds one of each, among three or more such words, talks to the judge.
_TASK_WORDS = frozenset({
    "reference", "verdict", "credit", "marks", "prediction", "predicted", "caption", "captions", "answer", "output",
    "reply", "replies", "print", "dimension", "dimensions", "axes", "rubric", "instruction", "instructions",
    "prompt", "reviewer", "judge", "grader", "evaluator", "model", "llm", "ai", "response", "evaluation",
    "comparison"})
_VERDICT_WORDS = frozenset({
    "score", "scores", "scored", "rate", "rated", "rating", "grade", "graded", "grading", "five", "5", "top",
    "highest", "maximum", "full", "excellent", "perfect", "success", "exceptional", "quality", "generously", "fives"})
_OTHER_WORDS = frozenset({"ignore", "skip", "pretend", "assume", "whoever", "policy"})
_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE = re.compile(r"[.!?\n]+")


def _evaluation_talk(view: str) -> str | None:
    for sentence in _SENTENCE.split(view):
        words = set(_WORD.findall(sentence))
        task, verdict = words & _TASK_WORDS, words & _VERDICT_WORDS
        if task and verdict and len(task | verdict | (words & _OTHER_WORDS)) >= 3:
            return f"evaluation talk: {sorted(task | verdict)}"
    return None


# overrides in other languages, matched on the accent-free, lower-case `native` view
_FOREIGN_OVERRIDES = re.compile(
    r"ignore[rz]?\s+(?:toutes\s+)?(?:les\s+)?(?:instructions|consignes|regles)|oubliez\s+les\s+consignes|"
    r"ignora\s+(?:lo|todo)\s+(?:anterior|precedente)|califica\w*\s+con|"
    r"ignora[r]?\s+(?:todas\s+|tutte\s+)?(?:las\s+|le\s+)?(?:instrucciones|istruzioni|reglas|regole|indicaciones)|"
    r"ignorier\w*\s+(?:alle\s+)?(?:\w+\s+)?(?:anweisungen|regeln)|vergiss\s+(?:alle\s+)?(?:\w+\s+)?anweisungen|"
    r"ignore\s+(?:todas\s+)?(?:as\s+)?instrucoes|negeer\s+(?:alle\s+)?(?:\w+\s+)?instructies|"
    r"игнорир\w*|проигнорир\w*|забудь\w*\s+(?:все\s+)?(?:\w+\s+)?инструкц\w*|忽略|无视|無視|무시|تجاهل|"
    # instruction or score words of other languages have no place in an English caption
    r"\b(?:anweisungen|instrucciones|istruzioni|instructies|instrucoes|consignes|punktzahl|puntuacion|punteggio|"
    r"note\s+maximale|hochstpunktzahl)\b|инструкц|оценк|指令|指示|满分|満点|지시|만점|التعليمات")


def _foreign(views: TextViews, text: str) -> str | None:
    if _FOREIGN_OVERRIDES.search(views.native) or any(_FOREIGN_OVERRIDES.search(v) for v in views.decoded):
        return "instruction override (other language)"
    if foreign_letters(text) >= _MIN_FOREIGN_LETTERS:
        return "non-English text"
    return None


@functools.lru_cache(maxsize=8192)  # GRPO groups and reruns repeat answers
def detect_injection(prediction: str) -> tuple[bool, str]:
    """(True, reason) when the prediction tries to steer the judge, else (False, "")."""
    views = text_views(prediction[:MAX_CHARS])
    if views.hidden:
        encoding, hidden = views.hidden[0]
        return True, f"encoded payload: {encoding} text {hidden[:40]!r}"
    why = _foreign(views, prediction[:MAX_CHARS])
    if why:
        return True, why
    for view in views.latin():
        for reason, pattern in _COMPILED:
            match = pattern.search(view)
            if match:
                return True, f"{reason}: {match.group(0).strip()[:60]!r}"
        talk = _evaluation_talk(view)
        if talk:
            return True, talk
    return False, ""
