"""Reply sentiment: VADER's lexicon for English text, the language told by langdetect.

Both ship their data inside their packages (VADER's lexicon, langdetect's profiles): nothing is
downloaded at run time. The analyzer and the detector load once per process, on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

POSITIVE, NEUTRAL, NEGATIVE, UNKNOWN = "positive", "neutral", "negative", "unknown"
SENTIMENTS = (POSITIVE, NEUTRAL, NEGATIVE, UNKNOWN)
# VADER's own recommended thresholds on the compound score.
COMPOUND_POSITIVE, COMPOUND_NEGATIVE = 0.05, -0.05
MIN_LETTERS_FOR_LANGUAGE = 20  # shorter text: too little to tell a language; read it as English


def sentiment_label(compound: float) -> str:
    if compound >= COMPOUND_POSITIVE:
        return POSITIVE
    if compound <= COMPOUND_NEGATIVE:
        return NEGATIVE
    return NEUTRAL


def letters(text: str) -> int:
    return sum(1 for ch in text if ch.isalpha())


# langdetect returns probabilities per language; English at least this likely counts as English.
ENGLISH_AT_LEAST = 0.2


@dataclass(frozen=True)
class Sentiment:
    label: str  # positive, neutral, negative or unknown
    compound: float | None  # VADER's compound score in [-1, 1]; None when not English
    language: str | None


@lru_cache(maxsize=1)
def _analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


@lru_cache(maxsize=1)
def _detect_langs():
    from langdetect import DetectorFactory, detect_langs

    DetectorFactory.seed = 0  # langdetect samples at random: a fixed seed gives one answer per text
    return detect_langs


def language_of(text: str) -> str | None:
    """ "en" when the text reads as English, else the likeliest language's code (None: no letters).

    A short text ("Not interested", "ok") is too little to tell a language by letter n-grams, and
    replies to an English clinic are English unless shown otherwise: short text counts as English.
    """
    if letters(text) == 0:
        return None
    if letters(text) < MIN_LETTERS_FOR_LANGUAGE:
        return "en"
    from langdetect.lang_detect_exception import LangDetectException

    try:
        candidates = _detect_langs()(text)
    except LangDetectException:
        return None
    if any(c.lang == "en" and c.prob >= ENGLISH_AT_LEAST for c in candidates):
        return "en"
    return candidates[0].lang if candidates else None


def classify(text: str | None) -> Sentiment:
    """The sentiment of a reply; `unknown` for empty or non-English text."""
    text = (text or "").strip()
    if not text:
        return Sentiment(UNKNOWN, None, None)
    language = language_of(text)
    if language != "en":
        return Sentiment(UNKNOWN, None, language)
    compound = _analyzer().polarity_scores(text)["compound"]
    return Sentiment(sentiment_label(compound), compound, language)
