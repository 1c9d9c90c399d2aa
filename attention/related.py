"""r(i): the positive word a negative word is measured against (Ban et al. 2024, sec. 4 asked GPT-4 for it).

``choose`` decides, in this order, and says why:

1. the negative word itself, when the positive has it as a content word (r = 1 for equal prompts);
2. in an English prompt, the **head noun** of its first phrase: the last word of the first run of content words
   ("a red circle with eyes" → circle, "professional office woman" → woman). A negative such as "glasses" or "hat"
   is an attribute of the prompt's subject, which is what Ban et al.'s related word is;
3. otherwise ``related_word``, by the maps: candidates are the positive's content words (function words: articles,
   prepositions, conjunctions, pronouns, auxiliaries, FUNCTION_WORDS in the prompt's language when it can be told;
   punctuation and special tokens never are). The word whose time-aggregated map correlates best with the negative
   word's (Pearson, over pixels) wins. When the best two correlations are within TIE of each other, the maps do not
   separate them, and the cosine similarity of the words' text embeddings (their rows of the model's own encoded
   context) decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

TIE = 0.05  # correlations closer than this do not separate two candidates

def listed(text: str) -> frozenset[str]:
    return frozenset(text.split())


FUNCTION_WORDS = {
    "english": listed(
        "a an the this that these those some any each every no of in on at to for from by with without into onto over "
        "under above below behind beside besides between near next inside outside through across around against "
        "along among up down off out about as and or but nor so yet if than then is are was were be been being has "
        "have had do does did it its he his she her they their them we our you your i my me which who whom whose "
        "while very"),
    "french": listed(
        "un une des le la les l du de d au aux ce cet cette ces et ou mais avec sans sur sous dans en par pour vers "
        "chez entre est sont il elle ils elles son sa ses leur leurs qui que"),
    "german": listed(
        "ein eine einer eines einem einen der die das den dem des und oder aber mit ohne auf unter in im an am zu zum "
        "zur von vom bei für über vor hinter neben zwischen ist sind er sie es sein ihr"),
    "spanish": listed(
        "un una unos unas el la los las lo del al y o pero con sin sobre bajo en de por para entre hacia es son su "
        "sus que se"),
}


def language(words: Sequence[str]) -> str:
    """The language whose function words the prompt uses most (English when none are known)."""
    hits = {name: sum(w in known for w in words) for name, known in FUNCTION_WORDS.items()}
    best = max(hits, key=lambda name: (hits[name], name == "english"))
    return best if hits[best] else "english"


def is_content(word: str, function_words: frozenset[str]) -> bool:
    """Not a function word, not punctuation, not a special token such as <eos>."""
    return (word not in function_words and any(c.isalnum() for c in word)
            and not (word.startswith("<") and word.endswith(">")))


def content_words(words: Sequence[str]) -> list[int]:
    """Indices of the content words in the prompt's language; every word, when none is left."""
    known = FUNCTION_WORDS[language(words)]
    return [i for i, w in enumerate(words) if is_content(w, known)] or list(range(len(words)))


def pearson(x: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Correlation over pixels of a map (h, w) with each of maps (words, h, w)."""
    x = x.flatten().double() - x.double().mean()
    ys = ys.flatten(1).double()
    ys = ys - ys.mean(dim=1, keepdim=True)
    return (ys @ x) / (ys.norm(dim=1) * x.norm()).clamp_min(1e-12)


@dataclass(frozen=True)
class Choice:
    """r(i), and why: 'map correlation' or 'text embedding', with the numbers that decided."""

    index: int
    reason: str


def related_word(negative_map: torch.Tensor, positive_maps: torch.Tensor, positives: Sequence[str],
                 negative_embedding: torch.Tensor | None = None,
                 positive_embeddings: torch.Tensor | None = None) -> Choice:
    """r(i) among the content words of ``positives`` (see the module docstring).

    negative_map: (h, w); positive_maps: (words, h, w); the embeddings, when given: (width,) and (words, width).
    """
    candidates = content_words(positives)
    corr = pearson(negative_map, positive_maps[candidates])
    order = corr.argsort(descending=True).tolist()
    best = candidates[order[0]]
    if len(order) == 1:
        return Choice(best, f"the only content word (map correlation {corr[order[0]]:.2f})")
    first, second = corr[order[0]].item(), corr[order[1]].item()
    if first - second >= TIE or negative_embedding is None or positive_embeddings is None:
        return Choice(best, f"map correlation {first:.2f} (next: {positives[candidates[order[1]]]} {second:.2f})")
    cosine = torch.nn.functional.cosine_similarity(positive_embeddings[candidates].double(),
                                                   negative_embedding.double()[None], dim=1)
    pick = int(cosine.argmax())
    return Choice(candidates[pick], f"text embedding cosine {cosine[pick]:.2f} (maps tied: {first:.2f} and "
                                    f"{second:.2f})")


def head_noun(words: Sequence[str]) -> int | None:
    """The head noun of an English prompt's first phrase: the last word of its first run of content words (English
    noun phrases end in their head); None for another language or a prompt without content words."""
    if language(words) != "english":
        return None
    run = []
    for i, word in enumerate(words):
        if is_content(word, FUNCTION_WORDS["english"]):
            run.append(i)
        elif run:
            break
    return run[-1] if run else None


def choose(negative: str, negative_map: torch.Tensor, positive_maps: torch.Tensor, positives: Sequence[str],
           negative_embedding: torch.Tensor | None = None,
           positive_embeddings: torch.Tensor | None = None) -> Choice:
    """r(i) for the negative word ``negative`` (see the module docstring)."""
    if negative in positives and positives.index(negative) in content_words(positives):
        return Choice(positives.index(negative), "the same word is in the positive")
    head = head_noun(positives)
    if head is not None:
        return Choice(head, "the head noun of the positive's first phrase")
    return related_word(negative_map, positive_maps, positives, negative_embedding, positive_embeddings)
