"""A seeded evasion suite for prompt screening: works with Chinese, Japanese and Latin
names, and prompts written the way users route around filters, plus innocent prompts
that share letters or characters with the names.

The works come in two halves. Odd seeds draw prompts over the *tuning* half (the works
the policy was set by hand on, including the issue's own examples); even seeds over the
*held-out* half, whose works, names, related terms and look-alikes were never looked at
while tuning. Report an even seed.

A registered name is a character's name, not a common word: "Medusa Queen" is registered,
not "Medusa", which is also a jellyfish and a myth ("Medusa jellyfish" is a benign prompt,
and it shares the word with the name).
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field

CATEGORIES = (
    "separator",
    "homoglyph",
    "leet_typo",
    "romanised",
    "script",
    "related",
    "benign",
)


@dataclass(frozen=True)
class SuiteWork:
    work_id: str
    title: str
    aliases: tuple[str, ...]
    related: tuple[str, ...]
    lookalikes: tuple[str, ...] = ()  # innocent prompts sharing letters with the names


@dataclass(frozen=True)
class SuitePrompt:
    prompt: str
    category: str
    work_id: str | None  # None for benign prompts


@dataclass(frozen=True)
class Suite:
    seed: int
    half: str
    works: tuple[SuiteWork, ...]
    prompts: tuple[SuitePrompt, ...] = field(default_factory=tuple)


TUNING = (
    SuiteWork(
        "ultraman",
        "Ultraman",
        ("奥特曼", "ウルトラマン"),
        ("光之巨人", "M78星云", "color timer", "specium ray"),
        ("ultramarine sky over the sea", "奥特莱斯购物中心的夜景", "an ultra marathon runner"),
    ),
    SuiteWork(
        "pikachu",
        "Pikachu",
        ("皮卡丘", "ピカチュウ"),
        ("电气鼠", "thunderbolt cheeks", "十万伏特", "lightning tail"),
        ("a pika on a rocky slope", "皮卡车停在路边", "a pikake flower lei"),
    ),
    SuiteWork(
        "medusa-queen",
        "Medusa Queen",
        ("美杜莎女王", "彩鳞"),
        ("蛇人族", "七彩吞天蟒", "斗气大陆"),
        ("Medusa jellyfish in deep water", "美杜莎水母标本", "a queen bee on honeycomb"),
    ),
    SuiteWork(
        "maruko",
        "Chibi Maruko",
        ("ちびまる子", "樱桃小丸子"),
        ("清水市の小学生", "おかっぱ頭の女の子", "爷爷友藏"),
        ("樱桃蛋糕和小丸子点心", "a chibi drawing of a cat", "丸子汤"),
    ),
    SuiteWork(
        "quillton",
        "Sir Quillton",
        ("奎尔顿爵士", "キルトン卿"),
        ("porcupine knight", "copper monocle", "羽毛长枪"),
        ("a quilt on the bed", "a knight in shining armor", "Sir Walter Scott novel"),
    ),
    SuiteWork(
        "nebula-nyx",
        "Nebula Nyx",
        ("星云妮克丝", "ネビュラニクス"),
        ("starlight cloak", "黑曜石王冠", "comet familiar"),
        ("a nebula in deep space", "Nyx goddess statue", "星云图像 telescope"),
    ),
    SuiteWork(
        "hozukimaru",
        "鬼灯丸",
        ("ホオズキマル", "Hozukimaru"),
        ("提灯の尻尾", "赤い狐面", "lantern tail fox"),
        ("鬼灯の実 autumn still life", "a lantern festival at night", "ホオズキ plant"),
    ),
    SuiteWork(
        "thunder-cat",
        "雷霆猫",
        ("Leiting Mao", "サンダーキャット"),
        ("闪电胡须", "紫色雷云", "storm collar"),
        ("雷霆般的掌声", "a thunder storm over a cat cafe", "猫咪晒太阳"),
    ),
    SuiteWork(
        "aurora-drake",
        "Aurora Drake",
        ("极光幼龙", "オーロラドレイク"),
        ("prism wings", "冰晶龙角", "polar egg"),
        ("aurora borealis over Norway", "a drake duck on a pond", "极光旅游 poster"),
    ),
)

HELD_OUT = (
    SuiteWork(
        "wukong",
        "孙悟空",
        ("Sun Wukong", "美猴王", "齐天大圣"),
        ("金箍棒", "筋斗云", "花果山", "紧箍咒"),
        ("孙子兵法 book cover", "a sunny day in Wuhan", "空中花园 garden", "猴子在树上"),
    ),
    SuiteWork(
        "nezha",
        "哪吒",
        ("Nezha", "三太子"),
        ("风火轮", "混天绫", "乾坤圈"),
        ("哪里有好吃的面馆", "a neon zebra crossing", "太子湾公园的郁金香"),
    ),
    SuiteWork(
        "doraemon",
        "Doraemon",
        ("哆啦A梦", "ドラえもん"),
        ("四次元口袋", "竹蜻蜓", "anywhere door", "time kerchief"),
        ("a door and a lemon on the table", "dorado fish at the market", "ドラム drum kit"),
    ),
    SuiteWork(
        "totoro",
        "Totoro",
        ("龙猫", "トトロ"),
        ("猫バス", "catbus", "acorn umbrella spirit"),
        ("Toto the little dog", "a tortoise in the garden", "torero in the arena"),
    ),
    SuiteWork(
        "zorvex",
        "Captain Zorvex",
        ("佐维克斯船长", "ゾーヴェックス"),
        ("iron comet ship", "violet jetpack", "三星徽章"),
        ("a zorro mask on a table", "a vortex in the sea", "captain of a fishing boat"),
    ),
    SuiteWork(
        "lumina-fox",
        "Lumina Fox",
        ("流光狐", "ルミナフォックス"),
        ("nine glowing tails", "月光森林", "crystal collar"),
        ("luminous fox fur in the snow", "a lumber yard at dawn", "流光溢彩的夜景"),
    ),
    SuiteWork(
        "brambleback",
        "Brambleback",
        ("荆背熊", "ブランブルバック"),
        ("thorn armored bear", "蜂蜜洞穴", "moss crown"),
        ("bramble bushes along the back fence", "a black bear in the woods", "荆棘丛"),
    ),
    SuiteWork(
        "kiranoko",
        "キラノコ",
        ("綺羅の子", "Kiranoko"),
        ("星屑のマント", "glitter mushroom hat", "月見草の杖"),
        ("キラキラ star stickers", "きのこ mushroom soup", "a killer whale jumping"),
    ),
    SuiteWork(
        "qingluan",
        "青鸾侠",
        ("Qingluan Xia", "Azure Phoenix Warrior"),
        ("翡翠羽衣", "九霄剑", "青铜面具"),
        ("青色的鸾鸟 painting", "大侠 swordsman in the rain", "an azure sky over a field"),
    ),
)

TEMPLATES_EN = (
    "{x}",
    "a poster of {x} in a city at night",
    "draw {x} fighting a monster, 4k, detailed",
    "{x} standing on a hill, watercolor",
    "cute chibi {x} sticker",
    "an oil painting of {x} and a cat",
)
TEMPLATES_ZH = (
    "{x}",
    "画一个{x}在城市里战斗",
    "{x}的高清壁纸",
    "一张{x}站在山顶的海报",
    "可爱的{x}贴纸，动漫风格",
)
RELATED_TEMPLATES = (
    "{a} and {b}",
    "a hero with {a}, {b}, dramatic lighting",
    "画一个拥有{a}和{b}的角色",
    "{a}, {b}, anime style, 4k",
    "illustration: {a} with {b} in the background",
)
GENERIC_BENIGN = (
    "a cat sleeping on a sofa",
    "sunset over the mountains, oil painting",
    "一只小狗在草地上奔跑",
    "山水画，水墨风格",
    "a bowl of ramen with eggs",
    "portrait of an old fisherman, photorealistic",
    "城市夜景，霓虹灯",
    "a red bicycle leaning on a wall",
    "桜の花と富士山",
    "a robot reading a book in a library",
)
SEPARATORS = (" ", "*", "-", ".", "_", "·", "/", "  ", "~", "|")
ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad")
HOMOGLYPHS = {
    "a": "а",
    "c": "с",
    "e": "е",
    "o": "о",
    "p": "р",
    "x": "х",
    "y": "у",
    "i": "і",
    "A": "Α",
    "B": "Β",
    "E": "Ε",
    "H": "Η",
    "K": "Κ",
    "M": "Μ",
    "N": "Ν",
    "O": "Ο",
    "P": "Ρ",
    "T": "Τ",
    "X": "Χ",
    "Z": "Ζ",
}
LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7", "l": "1"}


def _latin(text: str) -> bool:
    return all(c.isascii() for c in text)


def _han(text: str) -> bool:
    return any(0x4E00 <= ord(c) <= 0x9FFF for c in text)


def _kana(text: str) -> bool:
    return any(0x3040 <= ord(c) <= 0x30FF for c in text)


def _place(rng: random.Random, name: str) -> str:
    latin = _latin(name)
    template = rng.choice(TEMPLATES_EN if latin or rng.random() < 0.4 else TEMPLATES_ZH)
    return template.format(x=name)


def _separated(rng: random.Random, name: str) -> str:
    sep = rng.choice(SEPARATORS)
    chars = [c for c in name if not c.isspace()]
    if rng.random() < 0.5 or len(chars) < 4:
        return sep.join(chars)
    cut = rng.randrange(1, len(chars))
    return "".join(chars[:cut]) + sep + "".join(chars[cut:])


def _homoglyph(rng: random.Random, name: str) -> str:
    chars = list(name)
    if rng.random() < 0.5:
        for _ in range(rng.randint(1, 3)):
            chars.insert(rng.randrange(1, len(chars)), rng.choice(ZERO_WIDTH))
    swappable = [i for i, c in enumerate(chars) if c in HOMOGLYPHS]
    if swappable and (rng.random() < 0.7 or len(chars) == len(name)):
        for i in rng.sample(swappable, min(len(swappable), rng.randint(1, 3))):
            chars[i] = HOMOGLYPHS[chars[i]]
    elif len(chars) == len(name):  # nothing to swap: full-width forms instead
        chars = [chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in chars]
        chars.insert(rng.randrange(1, len(chars)), rng.choice(ZERO_WIDTH))
    return "".join(chars)


def _leet_or_typo(rng: random.Random, name: str) -> str:
    """Leetspeak, or one typo in a name of six letters or more (the policy's fuzzy bound:
    shorter names are one edit from too many common words)."""
    if rng.random() < 0.5 or len(name.replace(" ", "")) < 6:
        chars = list(name)
        spots = [i for i, c in enumerate(chars) if c.lower() in LEET]
        for i in rng.sample(spots, min(len(spots), rng.randint(1, 3))):
            chars[i] = LEET[chars[i].lower()]
        return "".join(chars)
    letters = list(name)
    inner = [i for i, c in enumerate(letters) if c.isalpha() and 0 < i < len(letters) - 1]
    i = rng.choice(inner)
    edit = rng.choice(("swap", "drop", "double", "replace", "insert"))
    if edit == "swap" and letters[i + 1].isalpha():
        letters[i], letters[i + 1] = letters[i + 1], letters[i]
    elif edit == "drop":
        del letters[i]
    elif edit == "double":
        letters.insert(i, letters[i])
    elif edit == "replace":
        letters[i] = rng.choice("aeioukcs".replace(letters[i].lower(), ""))
    else:
        letters.insert(i, rng.choice("hkcey"))
    return "".join(letters)


def _romanised(rng: random.Random, name: str) -> str:
    if _kana(name) or (not _han(name)):
        import pykakasi

        parts = pykakasi.kakasi().convert(name)  # type: ignore[no-untyped-call]
        pieces = [p["hepburn"] for p in parts]
    else:
        from pypinyin import Style, lazy_pinyin

        style = rng.choice((Style.NORMAL, Style.TONE, Style.TONE3))
        pieces = lazy_pinyin(name, style=style)
    joined = rng.choice(("", " ", "-"))
    text = joined.join(pieces)
    if rng.random() < 0.3:
        text = text.replace("uu", "u").replace("ou", "o")
    if rng.random() < 0.3:
        text = text.title()
    return text


def _script(rng: random.Random, name: str) -> str:
    if _han(name) and not _kana(name):
        import opencc

        converted: str = opencc.OpenCC("s2t").convert(name)
        return converted
    return "".join(chr(ord(c) - 0x60) if 0x30A1 <= ord(c) <= 0x30F6 else c for c in name)


def _names(work: SuiteWork) -> list[str]:
    return [work.title, *work.aliases]


def generate(seed: int, per_work: int = 5) -> Suite:
    """The suite for ``seed``: odd seeds over the tuning works, even over the held-out."""
    rng = random.Random(seed)
    works = TUNING if seed % 2 else HELD_OUT
    prompts: list[SuitePrompt] = []

    def add(category: str, work: SuiteWork | None, text: str) -> None:
        owner = None if work is None else work.work_id
        prompts.append(SuitePrompt(unicodedata.normalize("NFC", text), category, owner))

    for work in works:
        names = _names(work)
        latin = [n for n in names if _latin(n) and len(n.replace(" ", "")) >= 5]
        cjk = [n for n in names if _han(n) or _kana(n)]
        script = [n for n in cjk if _script(rng, n) != n]
        for _ in range(per_work):
            add("separator", work, _place(rng, _separated(rng, rng.choice(names))))
            add("homoglyph", work, _place(rng, _homoglyph(rng, rng.choice(names))))
            if latin:
                add("leet_typo", work, _place(rng, _leet_or_typo(rng, rng.choice(latin))))
            add("romanised", work, _place(rng, _romanised(rng, rng.choice(cjk))))
            if script:
                add("script", work, _place(rng, _script(rng, rng.choice(script))))
            a, b = rng.sample(work.related, 2)
            add("related", work, rng.choice(RELATED_TEMPLATES).format(a=a, b=b))
        for text in work.lookalikes:
            add("benign", None, text)
        for term in work.related:  # one related term alone never matches
            add(
                "benign",
                None,
                rng.choice(("a {x} on the kitchen wall", "{x}", "一张{x}的照片")).format(x=term),
            )
    for text in GENERIC_BENIGN:
        add("benign", None, text)
    return Suite(seed, "tuning" if seed % 2 else "held-out", works, tuple(prompts))
