"""The bulletin's text (通报), in Chinese, built once and laid out by every format.

The model is the real published bulletin (``seed/xiangtan-2019-11-bulletin.txt``).
Its data sections — 一、热线运行基本情况 and （一）–（五） — are rebuilt here from
``Bulletin.headline``, section 二 (the provincial platform's checks) from ``Bulletin.checks``,
and its attachment from ``Bulletin.rows()``.  The sections that are written by people rather
than computed (下一步工作要求, the 退单分析 commentary, the stories of single test calls) are
left out on purpose: a generated document must not pretend to have an opinion.

No figure is recomputed in this module.  Counts and rates are taken exactly as
``hotline.reports.bulletin`` printed them (``'99.53%'``, ``'-'``), so the documents agree
with the CSV and JSON outputs to the character.  The prose is built once by :func:`compose`
and laid out by :mod:`hotline.reports.docx`, :mod:`hotline.reports.markdown` and the
terminal's table (:func:`prose`), so the formats cannot drift apart; the attachment's cells
(:func:`table_cells`) and the comparison tables (:func:`change_table`) are shared the
same way. A bulletin covers any period (:mod:`hotline.reports.periods`): where the original
says the month (11月份, 本月), a week's says 本周, a quarter's 本季度, a year's 本年度.
What events wrote goes through the format's ``escape``
(:mod:`hotline.reports.escaping`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hotline.reports.bulletin import COLUMNS, DASH, TYPE_LABELS, Bulletin, list_keys
from hotline.reports.checks import points_text
from hotline.reports.compare import PERIOD_OVER_PERIOD, UNIT_RATES, YEAR_OVER_YEAR, Comparison
from hotline.reports.escaping import EventText
from hotline.reports.periods import Kind, Period
from hotline.schemas import metrics as mc

SECTION_BASICS = "一、热线运行基本情况"
SECTION_TYPES = "（一）交办工单话务类型"
SECTION_HOTSPOTS = "（二）交办工单热点问题"
SECTION_VISITS = "（三）回访情况"
SECTION_RETURNS = "（四）退单情况"
SECTION_SUPERVISION = "（五）督办情况"
SECTION_CHECKS = "二、省12345监管平台五率一度考核情况"
SECTION_SPOT_CHECKS = "（一）人工抽查回访情况"
SECTION_TEST_CALLS = "（二）热线服务拨测情况"
SECTION_DATA_MONITORING = "（三）热线数据监测情况"
SECTION_DATA_QUALITY = "数据质量说明"
SECTION_LATE = "补录情况"
SECTION_STANDARDS = "（六）最低标准达标情况"
SECTION_CHANGES = f"各成员单位主要指标{PERIOD_OVER_PERIOD}变化"
SECTION_CHANGES_YOY = f"各成员单位主要指标{YEAR_OVER_YEAR}变化"
FIGURE_DAILY = "daily"
FIGURE_SATISFACTION = "satisfaction"

_CN_DIGITS = "零一两三四五六七八九十"  # counting form: 前两位, not 前二位

_NOTES_REST = (
    "2. 回访、退单、督办按事件发生的月份统计，可能涉及上月交办的工单，故回访率可超过100%；"
    "3. “-”表示该单位本月没有回访、督办数据（数据未报送），或比率的分母为零。"
)
# The same notes for a period other than a month: events by their day, the period's own word.
_RANGE_REST = (
    "2. 回访、退单、督办按事件发生的日期统计，可能涉及此前交办的工单，故回访率可超过100%；"
    "3. “-”表示该单位{term}没有回访、督办数据（数据未报送），或比率的分母为零。"
)


def table_notes(bulletin: Bulletin) -> str:
    """The attachment's notes; the first says how the office orders its units."""
    groups = "、".join(bulletin.office.bulletin.ordered_groups)
    order = (
        f"{groups}按行政区划顺序排列，其余成员单位按交办数从多到少排序" if groups else "成员单位按交办数从多到少排序"
    )
    p = period(bulletin)
    rest = _NOTES_REST if p.kind is Kind.MONTH else _RANGE_REST.format(term=p.term)
    return f"备注：1. {order}；{rest}"


@dataclass(frozen=True)
class Section:
    """A heading and its paragraphs; level 1 is 一、…, level 2 is （一）…."""

    heading: str
    level: int
    paragraphs: tuple[str, ...] = ()
    figure: str = ""  # a chart the Word file draws after the paragraphs (FIGURE_*)
    caption: str = ""


@dataclass(frozen=True)
class Text:
    """Everything a document prints besides the table, already in Chinese."""

    title: str
    sections: tuple[Section, ...]
    attachment_heading: str
    table_title: str
    table_notes: str


def period(bulletin: Bulletin) -> Period:
    """The bulletin's period (validated like every other entry point)."""
    return bulletin.period


def within(p: Period) -> str:
    """How a sentence opens on the period: ``11月份`` as the office writes a month, else 本周, 本季度, …."""
    return f"{p.term}份" if p.kind is Kind.MONTH else p.term


def table_title(bulletin: Bulletin) -> str:
    return f"{period(bulletin).label}{bulletin.office.names.table}"


def _cn_number(n: int) -> str:
    """Chinese numeral for the small counts prose uses (前五位); digits beyond ten."""
    return _CN_DIGITS[n] if 0 <= n <= 10 else str(n)


def name_list(names: Iterable[str]) -> str:
    """``甲、乙、丙``; ``无`` for an empty list so the sentence still reads."""
    joined = "、".join(names)
    return joined or "无"


def _counted(counts: Mapping[str, int], escape: EventText, unit: str = "件") -> str:
    """``甲区人民政府119件、乙局43件`` in the given order, each name through ``escape``."""
    return "、".join(f"{escape(name)}{n}{unit}" for name, n in counts.items())


def _rate(label: str, value: str) -> str:
    """``接通率97.71%``; a zero denominator ('-') reads as 暂无数据 rather than a stray dash."""
    return f"{label}{value}" if value != DASH else f"{label}暂无数据"


def _with_share(text: str, share: str) -> str:
    """Append ``，占66.22%`` unless the share has no denominator."""
    return f"{text}，占{share}" if share != DASH else text


def _basics(bulletin: Bulletin) -> str:
    h = bulletin.headline
    calls, orders, visits = h["calls"], h["orders"], h["visits"]
    return (
        f"{period(bulletin).span}，{bulletin.office.names.hotline}共接到群众各类来电{calls['received']}件，"
        f"有效电话{calls['valid']}件，其中咨询建议类电话{calls['consult_or_suggest_answered_directly']}件，"
        f"交办各成员单位处理{calls['dispatched_to_units']}件，办结工单{orders['completed']}件，"
        f"逾期工单{orders['overdue']}件。"
        f"{_rate('接通率', calls['connection_rate'])}，"
        f"{_rate('在线办结率', calls['online_resolution_rate'])}，"
        f"{_rate('按时办结率', orders['on_time_completion_rate'])}，"
        f"有效回访工单数{visits['valid_visits']}件，回访未应答{visits['unreached']}件，"
        f"{_rate('回访满意率', visits['satisfaction_rate'])}。"
    )


def _order_types(bulletin: Bulletin) -> str:
    by_type: dict[str, dict[str, Any]] = bulletin.headline["dispatched_by_type"]
    if not bulletin.headline["calls"]["dispatched_to_units"]:
        return f"{period(bulletin).kind.value}没有交办工单。"
    parts = [_with_share(f"{TYPE_LABELS.get(t, t)}类{e['count']}个", e["share"]) for t, e in by_type.items()]
    return "；".join(parts) + "。"


def _hotspots(bulletin: Bulletin, escape: EventText) -> str:
    when = within(period(bulletin))
    categories: list[dict[str, Any]] = bulletin.headline["top_categories_share_of_all_received_calls"]
    if not categories:
        return f"{when}没有已分类的来电。"
    parts = [
        f"{escape(c['category'])}{c['share']}" if c["share"] != DASH else f"{escape(c['category'])}{c['count']}件"
        for c in categories
    ]
    return (
        f"{when}热线受理量列前{_cn_number(len(categories))}位的大类（占来电总数的比例）为："
        + "、".join(parts)
        + "。"
    )


def _visits(bulletin: Bulletin, escape: EventText) -> tuple[str, ...]:
    h = bulletin.headline
    v, lists, nr = h["visits"], h["satisfaction_lists"], h["not_replied_to_citizen"]
    office = bulletin.office
    cut = office.bulletin.satisfaction_lists
    high, low = list_keys(office)
    summary = (
        f"{period(bulletin).term}共回访办结工单{v['visited_completed_orders']}件，其中有效回访工单数{v['valid_visits']}件，"
        f"回访过程中市民未接、拒接、不愿做出评价等情况的工单{v['unreached']}件。"
        f"从回访工单的情况来看，满意工单{v['satisfied']}件、不满意工单{v['unsatisfied']}件，"
        f"{_rate('回访满意率为', v['satisfaction_rate'])}。"
    )
    ranking = (
        f"回访满意率在{office.percent(cut.high)}以上（含{office.percent(cut.high)}）的单位有："
        f"{name_list(map(escape, lists[high]))}；"
        f"回访满意率低于{office.percent(cut.low)}的单位有：{name_list(map(escape, lists[low]))}。"
    )
    not_replied = f"成员单位未将办理情况答复当事人工单{nr['total']}件"
    if nr["top_units"]:
        not_replied += f"，其中{_counted(nr['top_units'], escape)}"
    return summary, ranking, not_replied + "。"


def _returns(bulletin: Bulletin) -> str:
    r = bulletin.headline["returns"]
    text = f"{period(bulletin).term}共接受各成员单位退单{r['return_events']}单次"
    if r["share_of_dispatched"] != DASH:
        text += f"，占交办工单数的{r['share_of_dispatched']}"
    times = sorted(((int(t), n) for t, n in r["orders_by_times_returned"].items()), reverse=True)
    if times:
        text += f"，涉及工单{r['orders_returned']}件，其中" + "、".join(f"退单{t}次的工单{n}起" for t, n in times)
    return text + "。"


def _supervision(bulletin: Bulletin, escape: EventText) -> str:
    s = bulletin.headline["supervision"]
    text = (
        f"{period(bulletin).term}共电话督办{s['phone']['issued']}件，电话督办满意数{s['phone']['satisfied_after']}件；"
        f"书面督办{s['written']['issued']}件，书面督办满意数{s['written']['satisfied_after']}件"
    )
    # The original names the units with the most supervision (phone + written); the
    # headline does not carry that list, so it is read off the per-unit counts.
    supervised = sorted(
        (u for u in bulletin.units if u.has_feedback and u.phone_supervised + u.written_supervised),
        key=lambda u: -(u.phone_supervised + u.written_supervised),
    )[: bulletin.office.bulletin.top_units]
    if supervised:
        text += "。其中督办较多的单位为：" + _counted(
            {u.name: u.phone_supervised + u.written_supervised for u in supervised}, escape
        )
    text += "。"
    # 约谈: the units whose supervised orders stayed unsatisfied after supervision.
    unsatisfied = bulletin.headline.get("unsatisfied_after_supervision") or {}
    if unsatisfied:
        text += (
            f"督办后市民仍不满意的工单涉及{len(unsatisfied)}个单位：{_counted(unsatisfied, escape)}，"
            "对多次督办办理成效仍不理想的，将约谈相关责任人。"
        )
    return text


def _spot_checks(bulletin: Bulletin, escape: EventText) -> str:
    """（一）: the province's revisits of our orders, units named by what went wrong."""
    when = within(period(bulletin))
    checks = bulletin.checks
    sampled = checks.total(mc.SPOT_CHECKED)
    if not sampled:
        return f"{when}，省平台未对我市热线工单进行人工抽查回访。"
    not_reached, unsatisfied = checks.total(mc.SPOT_NOT_REACHED), checks.total(mc.SPOT_UNSATISFIED)
    text = (
        f"{when}，省平台对我市随机抽取了{sampled}件热线工单进行回访，"
        f"有{not_reached}件未回访，{unsatisfied}个回访不满意。"
    )
    named = [
        f"{label}的" + "，".join(f"{escape(name)}{n}件" for name, n in checks.by_unit(m).items())
        for label, m in (("未回访", mc.SPOT_NOT_REACHED), ("回访不满意", mc.SPOT_UNSATISFIED))
        if checks.total(m)
    ]
    return text + ("其中，" + "；".join(named) + "。" if named else "")


def _test_calls(bulletin: Bulletin, escape: EventText) -> str:
    """（二）: the province's test calls, points lost by item."""
    p = period(bulletin)
    when = within(p)
    checks = bulletin.checks
    calls = checks.total(mc.TEST_CALLS)
    if not calls:
        return f"{when}省平台未对我市热线进行拨测。"
    items = checks.items(mc.TEST_CALL_POINTS)
    if not items:
        return f"{when}省平台对我市热线拨测{calls}次，未扣分。"
    return (
        f"{when}我市在省平台随机拨测中，{'、'.join(map(escape, checks.most_deducted(mc.TEST_CALL_POINTS)))}"
        f"扣分较多。{p.kind.value}省平台拨测{calls}次，共扣{points_text(checks.total_points(mc.TEST_CALL_POINTS))}分，其中"
        + "、".join(f"{escape(item)}扣{points_text(p)}分" for item, p in items.items())
        + "。"
    )


def _data_monitoring(bulletin: Bulletin, escape: EventText) -> str:
    """（三）: uploads the province found inaccurate, and the points they cost."""
    when = within(period(bulletin))
    checks = bulletin.checks
    flagged = checks.total(mc.UPLOADS_FLAGGED)
    if not flagged:
        return f"{when}我市热线未出现数据上传不准确现象。"
    cost = "、".join(f"{escape(item)}指标被扣{points_text(p)}分" for item, p in checks.items(mc.UPLOAD_POINTS).items())
    return f"{when}我市热线出现{flagged}次数据上传不准确现象，{cost}。"


def change_sentence(comparison: Comparison | None) -> str:
    """``与10月相比，按期办结率提升0.47个百分点，…。`` (环比) or ``与上年同期（2018年11月）相比，…。``
    (同比); empty when there is none or no rate has the other period's figure."""
    if comparison is None:
        return ""
    parts = [f"{c.metric.label}{c.text}" for c in comparison.headline if c.text]
    if not parts:
        return ""
    other = comparison.previous
    head = f"与{other.short}相比，" if comparison.kind == PERIOD_OVER_PERIOD else f"与上年同期（{other.label}）相比，"
    return head + "，".join(parts) + "。"


def period_over_period(bulletin: Bulletin) -> str:
    """The 环比 sentence (empty when withheld or without figures)."""
    return change_sentence(bulletin.comparison)


def comparison_sentences(bulletin: Bulletin) -> tuple[str, ...]:
    """环比 and 同比 as made, then each comparison withheld with its reason
    (``10月数据自10月8日起，不完整，不作比较。``), each reason once."""
    made = tuple(s for s in (change_sentence(bulletin.comparison), change_sentence(bulletin.year_over_year)) if s)
    withheld = tuple(dict.fromkeys(w.text for w in bulletin.withheld))
    return made + withheld


def _late(bulletin: Bulletin, escape: EventText) -> tuple[str, ...]:
    """补录: the previous month's events that arrived after its bulletin was issued, by unit."""
    late = bulletin.late
    if late is None:
        return ()
    year, month = (int(x) for x in late.month.split("-"))
    issued = f"{year}年{month}月通报（{late.issue.numbering}，{late.issue.date_text}）"
    if not late.units:
        return (f"{issued}签发后，未收到该月补录数据。",)
    head = (
        f"{issued}签发后，又收到{month}月份数据{late.events}条（已计入{month}月数据，"
        f"未在该期通报中体现），按单位列示如下："
    )
    lines = [f"{escape(u.name)}{u.events}条" + (f"（{u.counted()}）" if u.counts else "") for u in late.units]
    return head, "；".join(lines) + "。"


def _standards(bulletin: Bulletin, escape: EventText) -> tuple[str, ...]:
    """未达标: per rate with a minimum standard in the office profile, the units below it."""
    found: dict[str, dict[str, Any]] = bulletin.headline.get("below_standard") or {}
    return tuple(
        f"{s['label']}最低标准为{s['standard']}，未达标的单位有：{name_list(map(escape, s['units']))}。"
        for s in found.values()
    )


def _data_quality(bulletin: Bulletin) -> tuple[str, ...]:
    if not bulletin.data_quality:
        return ("本期未发现数据质量问题。",)
    return tuple(f"{i}. {note}" for i, note in enumerate(bulletin.data_quality, start=1))


def compose(bulletin: Bulletin, escape: EventText) -> Text:
    """The bulletin's prose, built once for every document format; what events wrote goes
    through the format's ``escape`` (:func:`~hotline.reports.escaping.xml_text`,
    :func:`~hotline.reports.escaping.md_text`, …)."""
    p = period(bulletin)
    title_of_table = table_title(bulletin)
    late = _late(bulletin, escape)
    standards = _standards(bulletin, escape)
    checks = (
        Section(SECTION_CHECKS, 1),
        Section(SECTION_SPOT_CHECKS, 2, (_spot_checks(bulletin, escape),)),
        Section(SECTION_TEST_CALLS, 2, (_test_calls(bulletin, escape),)),
        Section(SECTION_DATA_MONITORING, 2, (_data_monitoring(bulletin, escape),)),
    )
    sections = (
        Section(
            SECTION_BASICS,
            1,
            (_basics(bulletin), *comparison_sentences(bulletin)),
            FIGURE_DAILY,
            f"图1  {p.term}每日{mc.DISPATCHED.label.removesuffix('数')}与{mc.OVERDUE.label.removesuffix('数')}工单"
            "（按交办日）",
        ),
        Section(SECTION_TYPES, 2, (_order_types(bulletin),)),
        Section(SECTION_HOTSPOTS, 2, (_hotspots(bulletin, escape),)),
        Section(
            SECTION_VISITS,
            2,
            _visits(bulletin, escape),
            FIGURE_SATISFACTION,
            f"图2  {p.term}各成员单位{mc.SATISFACTION_RATE.label}",
        ),
        Section(SECTION_RETURNS, 2, (_returns(bulletin),)),
        Section(SECTION_SUPERVISION, 2, (_supervision(bulletin, escape),)),
        *((Section(SECTION_STANDARDS, 2, standards),) if standards else ()),
        # Section 二 only where a provincial platform checks the office (its profile says so).
        *(checks if bulletin.office.bulletin.sections.provincial_checks else ()),
        *((Section(SECTION_LATE, 1, late),) if late else ()),
        Section(SECTION_DATA_QUALITY, 1, _data_quality(bulletin)),
    )
    return Text(
        title=f"{p.label}{bulletin.office.names.city}{bulletin.office.names.title}",
        sections=sections,
        attachment_heading=f"附件：{title_of_table}",
        table_title=title_of_table,
        table_notes=table_notes(bulletin),
    )


def table_cells(bulletin: Bulletin, escape: EventText) -> list[list[str]]:
    """The attachment's rows as printed, in :data:`COLUMNS`' order, each unit's name through
    ``escape`` (a unit the registry does not know is named by the events' ``unit_id``)."""
    return [[escape(row[key]) if key == "unit" else row[key] for key, _ in COLUMNS] for row in bulletin.rows()]


def _names(comparison: Comparison) -> tuple[str, str]:
    """The two periods as a comparison's headers name them: 11月 and 10月 (环比), 2019年11月 and 2018年11月 (同比)."""
    now, other = comparison.period, comparison.previous
    if comparison.kind == PERIOD_OVER_PERIOD:
        return now.short, other.short
    return now.label, other.label


def change_title(comparison: Comparison) -> str:
    """``各成员单位主要指标环比变化（11月与10月）``."""
    section = SECTION_CHANGES if comparison.kind == PERIOD_OVER_PERIOD else SECTION_CHANGES_YOY
    now, other = _names(comparison)
    return f"{section}（{now}与{other}）"


def change_table(comparison: Comparison, escape: EventText) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a per-unit comparison table (units, then 总计), shared by every
    format; each unit's name through the format's ``escape``."""
    now, other = _names(comparison)
    header = [mc.UNIT_LABEL]
    for m in UNIT_RATES:
        header += [f"{m.label}（{now}）", f"{m.label}（{other}）", f"{m.label}{comparison.kind}"]
    rows = []
    for unit in (*comparison.units, comparison.total):
        row = [escape(unit.name)]
        for m in UNIT_RATES:
            change = unit.of(m)
            row += [change.current_text, change.previous_text, change.text or DASH]
        rows.append(row)
    return header, rows


def prose(bulletin: Bulletin, escape: EventText) -> str:
    """The bulletin's sections as plain text, for the terminal (the table follows it there);
    what events wrote goes through ``escape``."""
    text = compose(bulletin, escape)
    lines = [text.title, ""]
    for section in text.sections:
        lines += [section.heading, *(f"    {p}" for p in section.paragraphs), ""]
    lines.append(text.attachment_heading)
    return "\n".join(lines)
