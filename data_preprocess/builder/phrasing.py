"""The opening of every built question, in the style of the released MedVidBench records: an expert persona,
then a sentence setting the scene (the source's procedure), drawn per record with the question's seed.

Our own wording: no sentence here is copied from a released record. Question templates use them through
the `{persona}` and `{setting}` placeholders (recipes/config/medvidbench_build.yaml).
"""

from __future__ import annotations

import random
from collections.abc import Mapping

PERSONAS: Mapping[str, tuple[str, ...]] = {
    "default": ("You are a surgeon experienced in reviewing operative video.",
                "Act as an expert analyst of surgical recordings.",
                "You are a specialist in surgical workflow analysis.",
                "As an experienced annotator of surgical videos, answer the question below."),
    "NurViD": ("You are a nursing educator who reviews procedure videos.",
               "Act as an expert in clinical nursing practice and its video documentation.",
               "You are a specialist in analysing healthcare procedure recordings."),
    "CoPESD": ("You are an endoscopist experienced in submucosal dissection.",
               "Act as an expert reviewer of endoscopic procedure videos.",
               "You are a specialist in gastrointestinal endoscopy footage."),
    "EgoSurgery": ("You are a surgeon reviewing first-person operative footage.",
                   "Act as an expert in egocentric surgical video analysis.",
                   "You are a specialist in head-mounted camera recordings of operations."),
    "JIGSAWS": ("You are a surgical skills instructor who grades robotic training exercises.",
                "Act as an expert assessor of robot-assisted surgical skill.",
                "You are an experienced examiner of bench-top robotic surgery tasks."),
}

_CHOLEC = ("The clip comes from a laparoscopic cholecystectomy.",
           "This footage was recorded through the laparoscope during a gallbladder removal.",
           "The video shows part of a laparoscopic cholecystectomy.")
SETTINGS: Mapping[str, tuple[str, ...]] = {
    "CholecT50": _CHOLEC,
    "CholecTrack20": _CHOLEC,
    "Cholec80-CVS": ("The segment shows the dissection of the hepatocystic triangle in a laparoscopic "
                     "cholecystectomy.", *_CHOLEC[:2]),
    "NurViD": ("The recording shows part of the nursing procedure {procedure} in a clinical setting.",
               "This clip captures a nurse performing {procedure}.",
               "The video documents the {procedure} procedure as practised in nursing care."),
    "AVOS": ("The video is a recording of an open surgical operation shared online.",
             "This footage shows an open surgery filmed from above the operative field.",
             "The clip comes from an open-surgery video."),
    "CoPESD": ("The footage comes from an endoscopic submucosal dissection, in which a mucosal flap is lifted "
               "and cut free.", "This endoscopic view shows the submucosal dissection of a lesion.",
               "The video is taken from an endoscopic submucosal dissection procedure."),
    "EgoSurgery": ("The recording is an egocentric view of an open operation, filmed by a camera the surgeon "
                   "wears.", "This first-person footage shows an open procedure from the operator's viewpoint.",
                   "The clip was captured by a head-mounted camera during open surgery."),
    "JIGSAWS": ("The video shows a {procedure} exercise on a bench-top model with the da Vinci robot.",
                "This recording captures a {procedure} training task.",
                "The clip shows a trainee performing {procedure} on a bench-top model."),
    "default": ("The video shows part of {procedure}.",),
}
NO_PROCEDURE = {"NurViD": "a nursing procedure", "JIGSAWS": "robotic surgery training"}


def opening(rng: random.Random, source: str, procedure: str) -> dict[str, str]:
    """{persona, setting} for one record, drawn with its question's random generator."""
    persona = rng.choice(PERSONAS.get(source, PERSONAS["default"]))
    setting = rng.choice(SETTINGS.get(source, SETTINGS["default"]))
    return {"persona": persona,
            "setting": setting.replace("{procedure}", procedure or NO_PROCEDURE.get(source, "a procedure"))}
