"""Time-of-use calendars: which tariff post ("ponta", "fora_ponta", …) an instant belongs to.

The default is the Brazilian Group A calendar of ANEEL REN 414/2010 (carried into REN 1000/2021)
as REFERENCE.md words it: *ponta* is a window of 3 consecutive hours on business days, set per
utility (commonly inside 17h-22h); Saturdays, Sundays and national holidays are *fora ponta* all
day; Group A (azul/verde) has no intermediate post. Other tenants declare their own windows (e.g.
peak and shoulder on business days, off-peak otherwise) with the same model.

Public API (other capabilities label intervals with it):

- `post_of(start, calendar)` — the post of the interval starting at `start` (any tz-aware time);
- `is_business_day(day, calendar)` / `holidays_in(year, calendar)` — the calendar's days;
- `brazil_group_a(...)` — the default Brazilian calendar.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

PONTA = "ponta"
FORA_PONTA = "fora_ponta"
BRAZIL = "BR"
# Monday=0 … Sunday=6 (`date.weekday()`): Brazilian business days are Monday to Friday.
WEEKDAYS = frozenset({0, 1, 2, 3, 4})


@dataclass(frozen=True, slots=True)
class PostWindow:
    """A daily window of local wall-clock time that belongs to `post`.

    `[start, start + hours)` must end by midnight (a window never crosses into the next day).
    With `business_days_only` (the ponta rule) the window applies on business days only; on other
    days those hours fall to the calendar's default post."""

    post: str
    start: time
    hours: int
    business_days_only: bool = True

    def __post_init__(self) -> None:
        if self.hours < 1:
            raise ValueError(f"post window {self.post} must last at least one hour")
        if self.start.minute or self.start.second or self.start.microsecond:
            raise ValueError(f"post window {self.post} must start on a whole hour")
        if self.start.hour + self.hours > 24:
            raise ValueError(f"post window {self.post} must end by midnight")

    def holds(self, local: datetime) -> bool:
        """Whether the local wall-clock time `local` lies inside the window."""
        return self.start.hour <= local.hour < self.start.hour + self.hours


@dataclass(frozen=True, slots=True)
class TouCalendar:
    """Posts of a tariff over the tenant's local time.

    An instant belongs to the first window that holds it, else to `default_post`. Holidays are,
    for Brazil, ANEEL's list of days without ponta (`aneel_ponta_holidays`: the fixed dates and
    Carnival Tuesday, Good Friday, Corpus Christi computed from Easter); elsewhere the public
    holidays of `holiday_country` (the `holidays` package; with `holiday_subdivision` also that
    state's/province's); plus `extra_holidays` the utility adds. `holiday_country=None`: none.
    """

    timezone: str
    windows: tuple[PostWindow, ...]
    default_post: str = FORA_PONTA
    business_days: frozenset[int] = WEEKDAYS
    holiday_country: str | None = "BR"
    holiday_subdivision: str | None = None
    extra_holidays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        ZoneInfo(self.timezone)  # fails early on an unknown zone
        if self.holiday_country == BRAZIL and self.holiday_subdivision is not None:
            raise ValueError(
                "Brazilian ponta holidays are ANEEL's national list (REN 1.000 Art. 2 XXXVIII): "
                "no state's holidays (holiday_subdivision) apply"
            )
        if self.default_post in {w.post for w in self.windows}:
            raise ValueError(f"the default post {self.default_post} cannot also have a window")
        for i, a in enumerate(self.windows):
            for b in self.windows[i + 1 :]:
                if a.start.hour < b.start.hour + b.hours and b.start.hour < a.start.hour + a.hours:
                    raise ValueError(f"post windows {a.post} and {b.post} overlap")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def posts(self) -> tuple[str, ...]:
        """Every post of the calendar, windows first (in declaration order), the default last."""
        names = list(dict.fromkeys(w.post for w in self.windows))
        return (*names, self.default_post)


def brazil_group_a(
    timezone: str = "America/Sao_Paulo",
    ponta_start: time = time(18),
    ponta_hours: int = 3,
    subdivision: str | None = None,
    extra_holidays: frozenset[date] = frozenset(),
) -> TouCalendar:
    """The Brazilian Group A calendar (REN 414/1000): ponta = `ponta_hours` (3) consecutive hours
    from `ponta_start` on business days (Monday-Friday, not a national holiday); fora ponta
    otherwise, all day on Saturdays, Sundays and national holidays."""
    return TouCalendar(
        timezone=timezone,
        windows=(PostWindow(PONTA, ponta_start, ponta_hours),),
        default_post=FORA_PONTA,
        holiday_country="BR",
        holiday_subdivision=subdivision,
        extra_holidays=extra_holidays,
    )


def easter_sunday(year: int) -> date:
    """Western (Gregorian) Easter Sunday: the anonymous Gregorian computus (Meeus/Jones/Butcher)."""
    golden = year % 19
    century, of_century = divmod(year, 100)
    leap_centuries, century_rest = divmod(century, 4)
    correction = (century + 8) // 25
    moon = (century - correction + 1) // 3
    epact = (19 * golden + century - leap_centuries - moon + 15) % 30
    weeks, weekday_rest = divmod(of_century, 4)
    weekday = (32 + 2 * century_rest + 2 * weeks - epact - weekday_rest) % 7
    shift = (golden + 11 * epact + 22 * weekday) // 451
    month, day = divmod(epact + weekday - 7 * shift + 114, 31)
    return date(year, month, day + 1)


# ANEEL REN 1.000/2021 Art. 2 XXXVIII a) (wording of REN 1.101/2024): ponta does not apply on
# Saturdays, Sundays, Carnival Tuesday, Good Friday, Corpus Christi and these fixed days. The list
# is the regulation's own, not the civil calendar: no state or municipal holiday exempts ponta.
_ANEEL_FIXED = ((1, 1), (4, 21), (5, 1), (9, 7), (10, 12), (11, 2), (11, 15), (12, 25))
_BLACK_CONSCIOUSNESS_FROM = 2024  # 20 November: a national holiday (Law 14.759/2023) from 2024


@lru_cache(maxsize=64)
def aneel_ponta_holidays(year: int) -> frozenset[date]:
    """The days of `year` on which Brazilian ponta does not apply besides weekends: the fixed
    dates of REN 1.000 Art. 2 XXXVIII a) plus Carnival Tuesday (Easter - 47), Good Friday
    (Easter - 2) and Corpus Christi (Easter + 60), computed for every year."""
    easter = easter_sunday(year)
    days = {date(year, month, day) for month, day in _ANEEL_FIXED}
    if year >= _BLACK_CONSCIOUSNESS_FROM:
        days.add(date(year, 11, 20))
    days |= {easter - timedelta(days=47), easter - timedelta(days=2), easter + timedelta(days=60)}
    return frozenset(days)


@lru_cache(maxsize=256)
def _public_holidays(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    # Imported here: every function reading the registry imports this module, few need holidays.
    import holidays

    # Only the public category: what the law calls a holiday, not optional/bank days.
    return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year).keys())


def holidays_in(year: int, calendar: TouCalendar) -> frozenset[date]:
    """The calendar's holidays in `year` plus the utility's extra ones: for Brazil ANEEL's list
    (`aneel_ponta_holidays`), elsewhere the public holidays of the country (and subdivision)."""
    extra = frozenset(d for d in calendar.extra_holidays if d.year == year)
    if calendar.holiday_country is None:
        return extra
    if calendar.holiday_country == BRAZIL:
        return aneel_ponta_holidays(year) | extra
    return _public_holidays(calendar.holiday_country, calendar.holiday_subdivision, year) | extra


def is_business_day(day: date, calendar: TouCalendar) -> bool:
    """A business day of the calendar: one of its weekdays and not a holiday (REN 414/1000:
    ponta does not apply on Saturdays, Sundays and national holidays)."""
    return day.weekday() in calendar.business_days and day not in holidays_in(day.year, calendar)


def post_of(start: datetime, calendar: TouCalendar) -> str:
    """The post of the interval (or hour) starting at the tz-aware `start`.

    `start` is read in the calendar's time zone, so a UTC interval start and a local one give the
    same answer; the post of an interval is the post of its start (intervals never straddle a
    whole-hour window boundary when they are at most an hour long and aligned)."""
    if start.tzinfo is None:
        raise ValueError("post_of needs a tz-aware time")
    local = start.astimezone(calendar.zone)
    business = is_business_day(local.date(), calendar)
    for window in calendar.windows:
        if (business or not window.business_days_only) and window.holds(local):
            return window.post
    return calendar.default_post


def posts_of_day(day: date, calendar: TouCalendar, interval_minutes: int) -> list[tuple[datetime, str]]:
    """The (local start, post) of each interval of one local day (23, 24 or 25 hours long)."""
    zone = calendar.zone
    cursor = datetime.combine(day, time(0), tzinfo=zone).astimezone(ZoneInfo("UTC"))
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(ZoneInfo("UTC"))
    step = timedelta(minutes=interval_minutes)
    slots = []
    while cursor < end:
        slots.append((cursor.astimezone(zone), post_of(cursor, calendar)))
        cursor += step
    return slots
