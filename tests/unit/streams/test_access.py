import pytest

from streams.access import Denied, bearer, require_supervisor, require_unit, scope

TOKENS = {"t-yuhu": "yuhu", "t-office": "*"}


def test_token_from_header_or_query() -> None:
    assert bearer({"Authorization": "Bearer abc"}, {}) == "abc"
    assert bearer({}, {"token": "xyz"}) == "xyz"
    assert bearer({}, {}) is None


@pytest.mark.parametrize(("token", "status"), [(None, 401), ("forged", 401), ("t-yuhu", 403)])
def test_refusals(token: str | None, status: int) -> None:
    with pytest.raises(Denied) as info:
        require_unit(TOKENS, token, "police")
    assert info.value.status == status


def test_scopes() -> None:
    assert require_unit(TOKENS, "t-yuhu", "yuhu") == "yuhu"
    assert require_unit(TOKENS, "t-office", "police") == "*"
    assert scope(TOKENS, "t-office") == "*"


def test_office_pages_need_a_supervisor_once_tokens_exist() -> None:
    require_supervisor({}, None)  # no tokens configured: a single-machine install stays open
    require_supervisor(TOKENS, "t-office")
    for token, status in ((None, 401), ("t-yuhu", 403)):
        with pytest.raises(Denied) as info:
            require_supervisor(TOKENS, token)
        assert info.value.status == status
