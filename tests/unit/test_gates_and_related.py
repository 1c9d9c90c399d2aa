"""r(i) picks a content word, and the gate rules on planted curves, maps and predictions (pure, no ComfyUI)."""

import math

import pytest
import torch
from pack import module

related, gates = module("attention.related"), module("attention.gates")
online = module("guidance.online")
NAN = math.nan


def blob(y: int, x: int, size: int = 16, spread: float = 8.0) -> torch.Tensor:
    """A map peaked at (y, x)."""
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return torch.exp(-((yy - y) ** 2 + (xx - x) ** 2) / spread)


def test_function_words_are_never_candidates_in_the_prompts_language():
    assert related.content_words(["a", "professional", "office", "woman", "with", ",", "<eos>"]) == [1, 2, 3]
    assert related.content_words(["une", "femme", "avec", "des", "lunettes"]) == [1, 4]
    assert related.language(["ein", "mann", "mit", "hut"]) == "german"
    assert related.content_words(["a", "the"]) == [0, 1]  # nothing left: every word


def test_r_i_is_the_content_word_whose_map_correlates_best_not_a_function_word():
    """'professional office woman' / 'glasses': the glasses sit on the woman's face; 'a' spreads like everything."""
    positives = ["a", "professional", "office", "woman"]
    face, desk = blob(4, 8), blob(12, 4)
    maps = torch.stack([face + desk + 0.5, desk * 0.5 + blob(8, 12), desk, face + 0.1 * desk])
    choice = related.related_word(blob(4, 9), maps, positives)
    assert positives[choice.index] == "woman" and choice.reason.startswith("map correlation")
    # "a" correlates with the face too, but is never a candidate
    assert related.pearson(blob(4, 9), maps[:1]).item() > 0.5


def test_r_i_is_pearson_correlation_not_a_dot_product():
    shape = torch.rand(8, 8, generator=torch.Generator().manual_seed(2))
    bright = torch.rand(8, 8, generator=torch.Generator().manual_seed(3)) + 10.0
    negative = shape * 3 + 1
    assert (negative.flatten() @ bright.flatten()) > (negative.flatten() @ shape.flatten())
    assert related.related_word(negative, torch.stack([shape, bright]), ["circle", "square"]).index == 0


def test_tied_maps_fall_back_to_the_text_embeddings():
    same = blob(8, 8)
    maps = torch.stack([same, same + 1e-4 * blob(2, 2)])
    embeddings = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    choice = related.related_word(blob(8, 8), maps, ["circle", "square"], torch.tensor([0.5, 0.9]), embeddings)
    assert choice.index == 1 and choice.reason.startswith("text embedding cosine")


def test_rule_a_is_the_onset_relative_to_r_t_own_start():
    """The old rule (a fraction of the peak) opens at step 0 when r_t starts near its peak; the onset does not."""
    curve = [0.99, 0.99, 1.0, 1.1, 1.3, 1.5, 1.5, 1.4]
    assert gates.onset(curve, 0.5) == 4 and gates.onset(curve, 0.1) == 3
    assert gates.onset([NAN, NAN, 1.0, 1.2, 1.0], 0.5) == 3
    assert gates.onset([1.2, 1.1, 1.0], 0.5) == 0  # never rises: from the start
    with pytest.raises(ValueError):
        gates.onset([NAN], 0.5)


def test_rule_b_is_the_positives_lock_on():
    final = torch.stack([blob(4, 4), blob(10, 10)])
    maps = torch.stack([torch.rand(2, 16, 16, generator=torch.Generator().manual_seed(t)) * (1 - t / 5) + final * t / 5
                        for t in range(6)])
    step = gates.lock_on(maps, 0.9)
    assert 0 < step < 5
    assert all(related.pearson(maps[step, w], final[w:w + 1]).item() > 0.8 for w in range(2))


def test_rule_c_settles_when_the_low_pass_layout_stops_moving():
    base = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    moving = [base * 0 + torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(t)) for t in range(3)]
    settled = [base + 0.001 * torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(9 + t))
               for t in range(4)]
    x0 = moving + settled
    changes = [math.inf] + [online.layout_change(a, b).item() for a, b in zip(x0, x0[1:], strict=False)]
    assert online.settle(changes, 0.05) == 5  # step 4 is the first below ε: the negative opens at step 5
    assert online.settle(changes, 0.05, earliest=6) == 7
    assert online.settle(changes, 1e-9) == len(changes)  # never
    watch = online.LayoutWatch(0.05, earliest=1)
    for step, x in enumerate(x0):
        watch.update(step, x)
    assert watch.opened_at == [5] and watch.open_images(5) == [True] and watch.open_images(4) == [False]


def test_r_i_is_the_same_word_else_the_subject_of_the_prompt_unless_the_maps_place_it_elsewhere():
    """'professional office woman' / 'glasses': r(i) is woman, the prompt's subject, where the maps do not single out
    another word: the glasses on her (ρ 1 with her map), over her and the other words' region (ρ 0.63 with hers,
    0.62 with theirs), weak (best ρ 0.36 < 0.5), or on a desk whose map overlaps hers (ρ 0.96 with both: within 0.2).
    Where the glasses' map is the desk's (ρ 1) and far from hers (−0.22), the maps win: desk. A word the positive has
    is its own r(i); another language falls back to the maps."""
    text = "a professional office woman at a desk"
    positives = ["a", "professional", "office", "woman", "at", "desk"]  # as captured: each word once
    maps = torch.stack([blob(4, 8)] * 3 + [blob(12, 4), blob(4, 8), blob(4, 12)])
    subject = "the subject of the positive prompt"
    for glasses in (blob(12, 4), blob(4, 8) + blob(12, 4), blob(8, 8, spread=60.0)):  # on her; her and others; weak
        choice = related.choose("glasses", glasses, maps, positives, text)
        assert positives[choice.index] == "woman" and choice.reason == subject, choice
    near = torch.stack([blob(4, 8)] * 3 + [blob(12, 4), blob(4, 8), blob(11, 5)])  # "office" … "desk" beside her
    choice = related.choose("glasses", blob(12, 4) + blob(11, 5), near, positives, text)
    assert positives[choice.index] == "woman" and choice.reason == subject, choice
    choice = related.choose("glasses", blob(4, 12), maps, positives, text)
    assert positives[choice.index] == "desk" and choice.reason.startswith("map correlation 1.00 (the subject, woman: ")
    assert positives[related.choose("desk", blob(4, 9), maps, positives, text).index] == "desk"
    assert [related.subject(w) for w in (["a", "red", "circle", "with", "eyes"], ["a", "the"])] == [2, None]
    french = ["une", "femme", "avec", "des", "lunettes"]
    french_maps = torch.stack([blob(2, 2), blob(4, 9), blob(2, 2), blob(2, 2), blob(12, 12)])
    choice = related.choose("chapeau", blob(4, 9), french_maps, french, "une femme avec des lunettes")
    assert french[choice.index] == "femme" and choice.reason.startswith("map correlation")


SUBJECTS = [  # (positive prompt, negative word, the positive word a person picks as r(i))
    # sentences, with verbs and participles
    ("a man holding an umbrella", "hat", "man"),
    ("a cat sitting on a chair", "collar", "cat"),
    ("an astronaut riding a horse on mars", "helmet", "astronaut"),
    ("a woman wearing sunglasses on the beach", "hat", "woman"),
    ("a car parked on the street at night", "rust", "car"),
    ("a man dressed in black standing in the rain", "beard", "man"),
    ("a dog runs through the park", "leash", "dog"),
    ("two cats playing with a ball of yarn", "collar", "cats"),
    ("a steampunk airship flying over a victorian city", "smoke", "airship"),
    ("a hummingbird drinking nectar from a flower", "blur", "hummingbird"),
    ("there is a vintage red car in front of the house", "rust", "car"),
    ("a beautiful naked woman lying on a bed", "tattoo", "woman"),
    ("a tall building at sunset", "crane", "building"),
    ("a cozy living room with a fireplace", "clutter", "room"),
    ("a knight riding a dragon over the mountains", "armor", "knight"),
    ("a red-haired girl reading a book under a tree", "glasses", "girl"),
    ("an old fisherman smiling at the camera", "beard", "fisherman"),
    # framing words
    ("photo of a dog in the park", "leash", "dog"),
    ("portrait of an old man with a beard", "glasses", "man"),
    ("a close-up of a tiger's face", "stripes", "tiger"),
    ("close-up photograph of a bee on a sunflower", "blur", "bee"),
    ("a black and white photo of a jazz musician, grain", "saxophone", "musician"),
    ("an oil painting of a lighthouse on a cliff during a storm", "people", "lighthouse"),
    ("aerial view of a city at night", "fog", "city"),
    ("cinematic film still of a samurai in the rain", "sword", "samurai"),
    ("product shot of a perfume bottle on marble", "text", "bottle"),
    ("a group of people at a concert", "phones", "people"),
    ("a bowl of ramen with chopsticks", "egg", "ramen"),
    ("highly detailed digital art of a wolf howling at the moon", "clouds", "wolf"),
    ("a photo of a teddy bear on a skateboard", "wheels", "bear"),
    ("portrait photo of a young woman, soft lighting", "makeup", "woman"),
    ("a watercolor illustration of a fox in the snow", "trees", "fox"),
    ("a man holding a cup of coffee", "steam", "man"),
    ("a girl with a glass of wine", "earrings", "girl"),
    ("a white steed in a meadow", "saddle", "steed"),
    ("(masterpiece), best quality, (1girl), solo...", "hat", "girl"),
    ("a macro shot of a dew drop on a leaf", "insect", "drop"),
    # comma tags
    ("masterpiece, best quality, 1girl, solo, outdoors", "hat", "girl"),
    ("woman, red dress, long hair, smiling", "jewelry", "woman"),
    ("best quality, ultra detailed, 1boy, armor, sword", "helmet", "boy"),
    ("score_9, score_8_up, 1girl, cat ears, pink hair", "tail", "girl"),
    ("8k, photorealistic, sports car, rain, neon lights", "people", "car"),
    ("masterpiece, highres, cyberpunk city, night, rain", "cars", "city"),
    ("beautiful landscape, mountains, lake, sunrise", "people", "landscape"),
    ("cinematic lighting, old man, wrinkles, portrait", "glasses", "man"),
    ("anime girl with cat ears, pink hair, school uniform", "tail", "girl"),
    ("award winning photo, red fox, snow, golden hour", "trees", "fox"),
    ("simple background, white background, teapot, porcelain", "shadow", "teapot"),
]


@pytest.mark.parametrize("positive, negative, expected", SUBJECTS, ids=[s[0][:40] for s in SUBJECTS])
def test_r_i_is_the_subject_a_person_would_pick(positive, negative, expected):
    """Prompts as users write them: sentences with verbs and participles, framing words, comma tags. The captured
    words reach r(i) as the capture lists them: each word once, in order, without punctuation."""
    words = related.split_prompt(positive)
    captured = list(dict.fromkeys(w for w in words if any(c.isalnum() for c in w)))
    maps = torch.stack([blob(4, 4)] * len(captured))
    choice = related.choose(negative, blob(4, 4), maps, captured, positive)
    assert captured[choice.index] == expected, (captured, choice)


def test_the_rule_covers_every_kind_of_prompt_forty_times():
    assert len(SUBJECTS) >= 40 and len({s[0] for s in SUBJECTS}) == len(SUBJECTS)
