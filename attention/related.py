"""r(i): the positive word a negative word is measured against (Ban et al. 2024, sec. 4 asked GPT-4 for it).

``choose`` decides, in this order, and says why:

1. the negative word itself, when the positive has it as a content word (r = 1 for equal prompts);
2. the maps, where they are informative (``informative``): one content word's time-aggregated map correlates
   strongly with the negative word's (Pearson ρ ≥ STRONG, over pixels) and better than the subject's by MARGIN or
   more, so the negative acts where that word is and the subject is elsewhere ("a woman at a desk", "glasses" lying on
   the desk). An adjective whose map covers the subject's region ("a red car", "rust") does not separate from it, and
   the subject stays. On the toy model, whose part negatives sit beside
   the shape rather than on it, the maps are not: "hat" against "a red circle with eyes" correlates 0.39 with "red",
   −0.12 with "circle" (bench/bench_related_maps.py);
3. in an English prompt, its **subject** (``subject``): the head noun of the first phrase that names a thing. A
   negative such as "glasses" or "hat" is an attribute of the prompt's subject, which is what Ban et al.'s related
   word is. The prompt is read as users write it: comma tags ("masterpiece, best quality, 1girl, solo" → girl: tags
   of quality, framing and setting name no subject), framing words ("photo of a dog" → dog, "a close-up of" …,
   "a group of people" → people), and sentences whose noun phrase ends at a verb or participle ("a man holding an
   umbrella" → man, "a car parked on the street" → car; "a naked woman" and "a tall building" keep their head);
4. otherwise ``related_word``, by the maps: candidates are the positive's content words (function words: articles,
   prepositions, conjunctions, pronouns, auxiliaries, FUNCTION_WORDS in the prompt's language when it can be told;
   punctuation and special tokens never are). The word whose time-aggregated map correlates best with the negative
   word's (Pearson, over pixels) wins. When the best two correlations are within TIE of each other, the maps do not
   separate them, and the cosine similarity of the words' text embeddings (their rows of the model's own encoded
   context) decides.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch

TIE = 0.05  # correlations closer than this do not separate two candidates
STRONG = 0.5  # a correlation this high singles out the word where the negative acts (a "strong" Pearson ρ)
MARGIN = 0.2  # and this far above the subject's, the maps place the negative away from the subject

def listed(text: str) -> frozenset[str]:
    return frozenset(text.split())


FUNCTION_WORDS = {
    "english": listed(
        "a an the this that these those some any each every no of in on at to for from by with without into onto over "
        "under above below behind beside besides between near next inside outside through across around against "
        "along among up down off out about as and or but nor so yet if than then is are was were be been being has "
        "have had do does did it its he his she her they their them we our you your i my me which who whom whose "
        "while very there here"),
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


JOINERS = frozenset("-'_")  # punctuation inside a phrase ("red-haired", "close-up"); any other ends a tag or clause
META = listed(  # tags that say how a picture looks, not what it shows
    "masterpiece best quality high highest top low worst normal highres hires absurdres ultra ultra-detailed detailed "
    "highly intricate sharp focus hdr uhd 4k 8k 16k raw realistic photorealistic hyperrealistic photoreal cinematic "
    "lighting light soft studio professional award winning trending artstation octane unreal engine render rendering "
    "score up solo simple white black background outdoors indoors day night sunset sunrise depth field bokeh film "
    "grain vibrant colors colorful beautiful aesthetic amazing stunning epic style official wallpaper volumetric")
FRAMING = listed(  # "a photo of X": X is what the picture shows; a tag of framing words alone shows nothing
    "photo photograph picture image portrait close closeup shot still view painting drawing illustration sketch render "
    "rendering art artwork poster selfie headshot macro scene silhouette photography")
OF_HEADS = FRAMING | listed(  # "a group of X", "a bowl of X": X too
    "group bunch herd flock pack pair couple crowd pile stack cup glass bowl plate bottle slice piece lot handful")
OPENERS = listed("a an the and - up")  # what may come before an OF_HEADS word: "a black and white photo of"
NOUNS_IN_ING_ED = listed(  # nouns and compound modifiers that look like participles
    "building painting drawing wedding ceiling evening morning clothing living dining swimming sleeping washing "
    "fishing shopping parking sewing boxing bowling lightning railing pudding dumpling duckling sapling viking "
    "earring sibling icing frosting landing bedding stuffing awning thing something nothing anything everything "
    "string spring sling swing steed speed breed greed creed tweed seabed hundred sacred")
VERBS = listed(  # present-tense verbs that end a subject
    "holds sits stands wears looks walks runs rides eats plays sleeps flies jumps lies reads drinks swims dances sings "
    "smiles stares waits carries leans floats hangs grows shines glows lays rests watches fights")


def split_prompt(text: str) -> list[str]:
    """A prompt's words in order, as CLIP's pre-tokenizer splits them: lower case, letter runs, single digits,
    punctuation runs, English contractions."""
    return re.findall(r"'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|[^\w\s]+|_", text.lower())


def is_verb(word: str, following: str | None) -> bool:
    """A verb or participle that ends the noun phrase before it: a present-tense verb, an -ing participle, or an -ed
    participle followed by no content word ("parked on", "dressed in"; "naked woman" is not); never a noun that
    looks like one ("building", "steed")."""
    if word in VERBS:
        return True
    if word in NOUNS_IN_ING_ED or len(word) <= 4:
        return False
    follows_content = following is not None and is_content(following, FUNCTION_WORDS["english"])
    return word.endswith("ing") or (word.endswith("ed") and not follows_content)


def framed(lowered: Sequence[str]) -> int:
    """Where the thing shown starts in a phrase that opens with a framing or quantity noun and "of" ("a black and
    white photo of X", "a close-up of X", "a group of X"); 0 otherwise ("a man holding a cup of coffee" → man)."""
    if "of" not in lowered:
        return 0
    of = lowered.index("of")
    opening = lowered[:of]
    known = FUNCTION_WORDS["english"]
    plain = all(w in OPENERS or (is_content(w, known) and not is_verb(w, lowered[k + 1]))
                for k, w in enumerate(opening))
    heads = [w for w in opening if w not in OPENERS]
    return of + 1 if plain and heads and heads[-1] in OF_HEADS else 0


def phrase_head(words: Sequence[str], indices: Sequence[int]) -> int | None:
    """The head noun of the first noun phrase among ``words[indices]`` (one tag or clause): the last content word
    before a function word, a possessive or a verb, after any "photo of", "group of"; None when all of it is META or
    framing."""
    known = FUNCTION_WORDS["english"]
    lowered = [words[i] for i in indices]  # split_prompt's words are lower case
    start = framed(lowered)
    indices, lowered = indices[start:], lowered[start:]
    content = [w for w in lowered if is_content(w, known)]
    if all(w in META or w in FRAMING or w.isdigit() or len(w) == 1 for w in content):  # "8k": "8", "k"
        return None
    run = []
    for k, word in enumerate(lowered):
        following = lowered[k + 1] if k + 1 < len(lowered) else None
        if run and (word in known or word == "'s" or (word not in META and is_verb(word, following))):
            break  # "tiger's face": the possessor
        if is_content(word, known):
            run.append(indices[k])
    return run[-1] if run else None


def subject(words: Sequence[str]) -> int | None:
    """The subject of an English prompt given as its words in order (``split_prompt``): the head of the first tag or
    clause that names a thing (see the module docstring); None for another language or META words only."""
    if language(words) != "english":
        return None
    part: list[int] = []
    for i, word in enumerate([*words, ","]):
        if any(c.isalnum() for c in word) or word in JOINERS:
            part.append(i)
            continue
        head = phrase_head(words, part) if part else None
        if head is not None:
            return head
        part = []
    return None


def subject_of(text: str, positives: Sequence[str]) -> int | None:
    """The index in ``positives`` (the captured words) of the subject of the prompt ``text``: the same word, or the
    captured word that holds it (T5 keeps "1girl" whole where CLIP splits "1", "girl")."""
    words = split_prompt(text)
    head = subject(words)
    if head is None:
        return None
    word = words[head]
    return positives.index(word) if word in positives else next(
        (j for j, p in enumerate(positives) if word in p), None)


def choose(negative: str, negative_map: torch.Tensor, positive_maps: torch.Tensor, positives: Sequence[str],
           positive_text: str = "", negative_embedding: torch.Tensor | None = None,
           positive_embeddings: torch.Tensor | None = None) -> Choice:
    """r(i) for the negative word ``negative`` among the captured words ``positives`` of the prompt
    ``positive_text`` (see the module docstring)."""
    if negative in positives and positives.index(negative) in content_words(positives):
        return Choice(positives.index(negative), "the same word is in the positive")
    head = subject_of(positive_text, positives)
    if head is not None:
        return (informative(negative_map, positive_maps, positives, head)
                or Choice(head, "the subject of the positive prompt"))
    return related_word(negative_map, positive_maps, positives, negative_embedding, positive_embeddings)


def informative(negative_map: torch.Tensor, positive_maps: torch.Tensor, positives: Sequence[str],
                head: int) -> Choice | None:
    """The content word the maps single out over the subject ``head``, or None: its map correlates with the negative
    word's by STRONG or more, and by MARGIN or more above the subject's."""
    candidates = content_words(positives)
    corr = pearson(negative_map, positive_maps[candidates])
    best = int(corr.argmax())
    subject_corr = pearson(negative_map, positive_maps[head:head + 1])[0].item()
    if candidates[best] == head or corr[best] < STRONG or corr[best] - subject_corr < MARGIN:
        return None
    return Choice(candidates[best], f"map correlation {corr[best]:.2f} (the subject, {positives[head]}: "
                                    f"{subject_corr:.2f})")
