"""Per-source clinical terminology for the expert-guided prompts (written for this project).

Each source maps to a `Glossary`: the specialty the writer and reviewer play, the default procedure
name, readable forms of the annotation labels, and short term definitions. A prompt lists only the
terms that occur in its item's facts (plus the source's general notes), so prompts stay short.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Glossary:
    """Terminology of one source."""

    specialty: str
    procedure: str
    notes: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    terms: Mapping[str, str] = field(default_factory=dict)

    def readable(self, label: str) -> str:
        """A label as a clinician writes it ('carlot-triangle-dissection' -> "Calot's triangle dissection")."""
        return self.labels.get(label, re.sub(r"[_\-]+", " ", label).strip())

    def relevant_terms(self, words: Iterable[str]) -> dict[str, str]:
        """The definitions whose term occurs in any of `words` (case- and separator-insensitive)."""
        text = " ".join(_norm(w) for w in words)
        return {term: meaning for term, meaning in self.terms.items() if _norm(term) in text}


def _norm(text: str) -> str:
    return re.sub(r"[\s_\-,]+", " ", text.lower()).strip()


_CHOLE_TERMS = {
    "grasper": "atraumatic laparoscopic forceps used to hold and retract the gallbladder or tissue",
    "bipolar": "bipolar electrosurgical forceps for coagulation between its two jaws",
    "hook": "monopolar L-shaped electrocautery hook used to dissect and coagulate",
    "scissors": "laparoscopic scissors used to divide the cystic duct and artery after clipping",
    "clipper": "clip applier that places titanium or polymer clips on the cystic duct and artery",
    "irrigator": "suction-irrigation cannula that aspirates blood or fluid and irrigates the field",
    "specimen bag": "retrieval bag into which the gallbladder is placed for extraction",
    "cystic duct": "duct joining the gallbladder to the common bile duct; clipped and divided",
    "cystic artery": "artery supplying the gallbladder; clipped and divided",
    "cystic plate": "liver bed of the gallbladder, exposed in the lower third for the critical view",
    "calot": "Calot's (hepatocystic) triangle: cystic duct, common hepatic duct and liver edge",
    "hepatocystic triangle": "region bounded by the cystic duct, common hepatic duct and inferior liver edge",
    "gallbladder": "the organ removed; retracted cranially (fundus) and laterally (infundibulum)",
    "liver": "retracted or used as counter-traction; the gallbladder is dissected from its bed",
    "omentum": "fatty peritoneal fold that may adhere to the gallbladder and is dissected away",
    "peritoneum": "serosal layer incised over the hepatocystic triangle and gallbladder bed",
    "critical view": "critical view of safety: two structures entering the gallbladder, cleared triangle, "
                     "exposed cystic plate",
    "coagulate": "apply energy to seal bleeding vessels or tissue",
    "retract": "hold tissue under tension to expose the operative plane",
    "dissect": "separate tissue planes",
    "aspirate": "suction fluid or blood from the field",
    "pack": "place the gallbladder in the specimen bag",
}

_ESD_TERMS = {
    "knife": "electrosurgical ESD knife (e.g. dual or IT knife) used for marking, incision and submucosal dissection",
    "forceps": "endoscopic grasping or hemostatic forceps used for traction or to coagulate vessels",
    "submucosa": "layer beneath the mucosa that is lifted by injection and dissected in ESD",
    "mucosa": "innermost layer; the lesion lies in it and is resected en bloc",
    "marking": "coagulation dots placed around the lesion margin before incision",
    "injection": "submucosal injection of a lifting solution to raise the lesion",
    "incision": "circumferential mucosal incision outside the marking dots",
    "dissection": "cutting through the submucosal layer beneath the lesion",
    "hemostasis": "stopping bleeding by coagulation with forceps or the knife",
    "lift": "raising the lesion with a submucosal cushion",
}

_OPEN_TERMS = {
    "scalpel": "surgical blade used for skin incision and sharp dissection",
    "forceps": "toothed or atraumatic tissue forceps used to hold tissue",
    "needle driver": "needle holder used to pass the suture needle",
    "needle holder": "instrument that grasps the curved suture needle",
    "scissors": "Metzenbaum (tissue) or Mayo (suture) scissors",
    "retractor": "instrument holding wound edges apart for exposure",
    "electrocautery": "monopolar cautery pencil used to cut and coagulate",
    "suturing": "closing tissue with needle and thread",
    "tying": "securing a suture with instrument or hand knots",
    "cutting": "dividing tissue or suture with blade, scissors or cautery",
    "incision": "cutting through skin and subcutaneous tissue",
    "dissection": "separating tissue planes to expose structures",
    "hemostasis": "control of bleeding by pressure, cautery or ligation",
    "irrigation": "rinsing the wound with saline",
    "closure": "approximating wound layers, usually with sutures",
    "disinfection": "skin antisepsis of the operative site",
    "design": "marking the planned incision line on the skin",
    "anesthesia": "infiltration of local anaesthetic around the operative site",
    "dressing": "applying a sterile dressing over the closed wound",
}

_NURSING_TERMS = {
    "aseptic": "technique that prevents contamination of sterile items and sites",
    "hand hygiene": "hand washing or alcohol rub before and after patient contact",
    "gloves": "clean or sterile gloves put on before the procedure",
    "tourniquet": "band applied proximally to distend the vein before venepuncture",
    "venipuncture": "puncture of a vein with a needle to draw blood or place a cannula",
    "syringe": "used to draw up, inject or aspirate fluid",
    "subcutaneous": "injection into the fatty tissue below the skin, typically at 45-90 degrees",
    "intramuscular": "injection into a muscle such as the deltoid or ventrogluteal site",
    "nasogastric": "tube passed through the nose into the stomach; placement is checked before feeding",
    "gavage": "feeding through a nasogastric tube",
    "catheter": "tube inserted into a body cavity or vessel",
    "disinfect": "cleaning the site with an antiseptic swab, from the centre outward",
    "label": "labelling of specimens or lines with patient identification",
}

_DRYLAB_TERMS = {
    "needle driver": "robotic needle holder (da Vinci) used to grasp and drive the needle",
    "suturing": "passing the needle through the bench-top tissue pad and pulling the thread through",
    "knot tying": "forming and tightening a surgical knot with the instruments",
    "needle passing": "passing the needle through a series of metal rings",
    "gesture": "an atomic surgical motion of the JIGSAWS vocabulary (e.g. positioning the needle)",
}

_CHOLE = Glossary(
    specialty="laparoscopic hepatobiliary surgeon", procedure="laparoscopic cholecystectomy",
    notes=("Phases run: preparation, Calot's triangle dissection, clipping and cutting, gallbladder "
           "dissection, gallbladder packaging, cleaning and coagulation, gallbladder extraction.",),
    labels={"carlot-triangle-dissection": "Calot's triangle dissection",
            "calot-triangle-dissection": "Calot's triangle dissection",
            "clipping-and-cutting": "clipping and cutting", "gallbladder-dissection": "gallbladder dissection",
            "gallbladder-packaging": "gallbladder packaging", "cleaning-and-coagulation": "cleaning and coagulation",
            "gallbladder-extraction": "gallbladder extraction", "specimenbag": "specimen bag",
            "null_verb": "no action"},
    terms=_CHOLE_TERMS)
_OPEN = Glossary(specialty="open surgeon", procedure="open surgery",
                 notes=("Views may be egocentric (head-mounted camera) or from YouTube recordings.",),
                 terms=_OPEN_TERMS)

GLOSSARIES: dict[str, Glossary] = {
    "CholecT50": _CHOLE, "CholecTrack20": _CHOLE, "Cholec80-CVS": _CHOLE,
    "CoPESD": Glossary(specialty="interventional endoscopist", procedure="endoscopic submucosal dissection (ESD)",
                       notes=("Steps: marking, submucosal injection, mucosal incision, submucosal dissection, "
                              "hemostasis.",), terms=_ESD_TERMS),
    "AVOS": _OPEN, "EgoSurgery": _OPEN,
    "NurViD": Glossary(specialty="clinical nurse educator", procedure="a nursing procedure",
                       notes=("Describe the nurse's steps, patient safety and aseptic technique.",),
                       terms=_NURSING_TERMS),
    "JIGSAWS": Glossary(specialty="robotic surgery skills instructor", procedure="a dry-lab robotic training task",
                        notes=("Bench-top training on a da Vinci system: no patient anatomy is present.",),
                        terms=_DRYLAB_TERMS),
}
GENERIC = Glossary(specialty="surgeon", procedure="a medical procedure")


def glossary_for(source: str) -> Glossary:
    """The source's glossary (a generic one for an unknown source)."""
    return GLOSSARIES.get(source, GENERIC)
