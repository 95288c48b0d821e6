"""What the calls are about: the month's category totals and a plausible category per unit.

The headline prints the top five categories' shares of all calls; the other
categories must each stay below the fifth. Handled calls consume these totals, and
orders take a category typical of the unit they end at.
"""

from __future__ import annotations

from decimal import Decimal

from hotline.generate.model import World
from hotline.generate.targets import Targets

# Categories after the headline's top five; their counts are spread flatly so
# that each stays below the fifth category, as the bulletin's ranking implies.
OTHER_CATEGORIES: tuple[tuple[str, float], ...] = (
    ("社会保障", 1.35),
    ("医疗卫生", 1.3),
    ("市场监管", 1.25),
    ("教育培训", 1.2),
    ("公安政法", 1.15),
    ("劳动就业", 1.1),
    ("民政服务", 1.05),
    ("农业农村", 1.0),
    ("国土资源", 0.95),
    ("规划建设", 0.95),
    ("文化旅游", 0.9),
    ("水利水务", 0.85),
    ("邮政通信", 0.85),
    ("金融保险", 0.8),
    ("食品药品", 0.8),
    ("户籍证照", 0.75),
    ("税务", 0.7),
    ("消防安全", 0.65),
    ("企业服务", 0.6),
    ("退役军人", 0.55),
    ("宗教民族", 0.45),
    ("其他", 1.0),
)

DISTRICT_CATEGORIES = ("环境保护", "城市管理", "住建房管", "交通管理")
# What each unit is usually asked about; districts take the general urban mix.
UNIT_CATEGORIES: dict[str, tuple[str, ...]] = {
    "police": ("公安政法", "交通管理", "户籍证照"),
    "jiaofa-group": ("交通管理",),
    "housing": ("住建房管",),
    "transport": ("交通管理",),
    "zhonghuan-water": ("供水电气",),
    "chengfa-group": ("住建房管", "城市管理"),
    "xinao-gas": ("供水电气",),
    "health": ("医疗卫生",),
    "natural-resources": ("国土资源", "规划建设"),
    "hr-social-security": ("社会保障", "劳动就业"),
    "ecology-environment": ("环境保护",),
    "medical-insurance": ("社会保障", "医疗卫生"),
    "state-grid": ("供水电气",),
    "education": ("教育培训",),
    "urban-management": ("城市管理",),
    "banking-insurance-regulation": ("金融保险",),
    "china-mobile": ("邮政通信",),
    "jianglu-group": ("劳动就业", "社会保障"),
    "china-telecom": ("邮政通信",),
    "market-regulation": ("市场监管", "食品药品"),
    "industrial-investment": ("住建房管",),
    "agriculture": ("农业农村",),
    "taxation": ("税务",),
    "china-unicom": ("邮政通信",),
    "postal-administration": ("邮政通信",),
    "radio-tv": ("邮政通信",),
    "industry-it": ("企业服务",),
    "veterans-affairs": ("退役军人",),
    "xiangdun-group": ("公安政法",),
    "emergency-management": ("消防安全",),
    "civil-air-defense": ("住建房管",),
    "development-reform": ("市场监管",),
    "culture-tourism-sports": ("文化旅游",),
    "housing-provident-fund": ("住建房管",),
    "disabled-persons": ("民政服务",),
    "china-post": ("邮政通信",),
    "guoan-network": ("邮政通信",),
    "civil-affairs": ("民政服务",),
    "water-resources": ("水利水务",),
    "youju-center": ("住建房管",),
    "ethnic-religious-affairs": ("宗教民族",),
    "justice": ("公安政法",),
    "commerce": ("市场监管",),
    "medical-vocational-college": ("教育培训",),
}


def category_targets(targets: Targets) -> dict[str, int]:
    """Handled calls per category: the top five exactly, the rest spread flatly below them."""
    rest = targets.answered - sum(targets.top_categories.values())
    weights = [w for _, w in OTHER_CATEGORIES]
    raw = [Decimal(rest) * Decimal(str(w)) / Decimal(str(sum(weights))) for w in weights]
    counts = [int(x) for x in raw]
    by_remainder = sorted(range(len(raw)), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in by_remainder[: rest - sum(counts)]:
        counts[i] += 1
    result = dict(targets.top_categories)
    floor = min(targets.top_categories.values())
    for (name, _), n in zip(OTHER_CATEGORIES, counts, strict=True):
        if n >= floor or name in result:
            raise ValueError(f"category {name} would get {n} calls, breaking the top-five ranking")
        result[name] = n
    return result


def pick_category(world: World, unit_id: str, *, consume: bool) -> str:
    """A category typical for the unit; ``consume`` draws from the month's call totals."""
    rng = world.rng
    preferred = UNIT_CATEGORIES.get(unit_id)
    if preferred is None and unit_id in world.districts:
        preferred = DISTRICT_CATEGORIES if rng.random() < 0.6 else None
    left = world.category_left
    if preferred is not None and rng.random() < 0.85:
        open_ = [c for c in preferred if left.get(c, 0) > 0 or not consume]
        if open_:
            choice = rng.choice(open_)
            if consume:
                left[choice] -= 1
            return choice
    names = [c for c, n in left.items() if n > 0]
    choice = rng.choices(names, weights=[left[c] for c in names])[0]
    if consume:
        left[choice] -= 1
    return choice
