from datetime import datetime

from hotline.streams.deadlines import TZ, add_working_days, due_at, is_workday


def test_national_day_holidays_and_the_make_up_saturday() -> None:
    # 2019-10-01..07 were holidays; Saturday 2019-10-12 was a make-up workday (调休).
    assert not is_workday(datetime(2019, 10, 3).date())
    assert is_workday(datetime(2019, 10, 12).date())
    start = datetime(2019, 9, 30, 10, 0, tzinfo=TZ)
    assert add_working_days(start, 5) == datetime(2019, 10, 12, 10, 0, tzinfo=TZ)


def test_limit_depends_on_the_order_type_and_is_configurable() -> None:
    monday = datetime(2019, 11, 4, 9, 0, tzinfo=TZ)
    assert due_at(monday, "consultation") == datetime(2019, 11, 7, 9, 0, tzinfo=TZ)
    assert due_at(monday, "suggestion") == datetime(2019, 11, 18, 9, 0, tzinfo=TZ)
    assert due_at(monday, "complaint", {"complaint": 1}) == datetime(2019, 11, 5, 9, 0, tzinfo=TZ)


def test_weekends_are_skipped_in_local_time() -> None:
    # Friday 23:30 in Beijing is still Friday 15:30 in UTC: the local date decides.
    friday = datetime.fromisoformat("2019-11-08T15:30:00+00:00")
    assert add_working_days(friday, 1) == datetime(2019, 11, 11, 23, 30, tzinfo=TZ)


def test_years_the_calendar_does_not_cover_fall_back_to_weekdays() -> None:
    assert is_workday(datetime(2031, 3, 3).date())  # a Monday
    assert not is_workday(datetime(2031, 3, 1).date())  # a Saturday
