import hmac

import pytest

from hotline.streams import access as access_module
from hotline.streams.access import TICKET_COOKIE, Access, Credential, Denied, bearer, ticket_key, token_scope

TOKENS = {"t-yuhu": "yuhu", "t-office": "*"}
NOW = 1_700_000_000.0


def gate(tokens: dict[str, str] = TOKENS, secret: str | None = None, now: float = NOW, ttl_s: float = 3600) -> Access:
    return Access.configure(tokens, secret, ttl_s, clock=lambda: now)


def token(value: str) -> Credential:
    return Credential(token=value)


def ticket(value: str) -> Credential:
    return Credential(ticket=value)


def test_token_from_header_or_query() -> None:
    assert bearer({"Authorization": "Bearer abc"}, {}).token == "abc"
    assert bearer({}, {"token": "xyz"}).token == "xyz"
    assert bearer({}, {}) == Credential()


def test_ticket_from_the_cookie() -> None:
    assert bearer({}, {}, {TICKET_COOKIE: "v1.x.1.y"}) == Credential(ticket="v1.x.1.y")


@pytest.mark.parametrize(("presented", "status"), [(None, 401), ("forged", 401), ("t-yuhu", 403)])
def test_refusals(presented: str | None, status: int) -> None:
    with pytest.raises(Denied) as info:
        gate().require_unit(Credential(token=presented), "police")
    assert info.value.status == status


def test_scopes() -> None:
    assert gate().require_unit(token("t-yuhu"), "yuhu") == "yuhu"
    assert gate().require_unit(token("t-office"), "police") == "*"
    assert gate().scope(token("t-office")) == "*"


def test_office_pages_need_a_supervisor_once_tokens_exist() -> None:
    gate({}).require_supervisor(Credential())  # no tokens configured: a single-machine install stays open
    gate().require_supervisor(token("t-office"))
    for presented, status in ((None, 401), ("t-yuhu", 403)):
        with pytest.raises(Denied) as info:
            gate().require_supervisor(Credential(token=presented))
        assert info.value.status == status


def test_a_token_is_compared_with_every_configured_token_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """No dict lookup, no early exit: each configured token goes through hmac.compare_digest."""
    calls: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(access_module.hmac, "compare_digest", spy)
    tokens = {f"t-{i}": f"unit-{i}" for i in range(5)}
    assert token_scope(tokens, "t-0") == "unit-0"  # the first matches, the other four are compared anyway
    assert len(calls) == 5
    assert all(len(a) == len(b) == 32 for a, b in calls)  # digests: the token's length is not revealed either


def test_a_ticket_opens_the_scope_of_the_token_it_was_issued_for() -> None:
    issued = gate().issue("yuhu")
    assert gate(now=NOW + 3599).scope(ticket(issued)) == "yuhu"


def test_an_expired_ticket_is_401() -> None:
    issued = gate().issue("*")
    with pytest.raises(Denied) as info:
        gate(now=NOW + 3600).scope(ticket(issued))
    assert info.value.status == 401 and "expired" in info.value.reason


def test_a_ticket_with_its_scope_changed_is_401() -> None:
    """A unit cannot turn its ticket into a supervisor's: the scope is under the MAC."""
    version, _, expiry, mac = gate().issue("yuhu").split(".")
    forged = ".".join([version, "Kg", expiry, mac])  # "Kg" is base64url of "*"
    with pytest.raises(Denied) as info:
        gate().scope(ticket(forged))
    assert info.value.status == 401


def test_a_ticket_with_its_expiry_extended_is_401() -> None:
    version, scope_b64, expiry, mac = gate().issue("*").split(".")
    with pytest.raises(Denied) as info:
        gate().scope(ticket(".".join([version, scope_b64, str(int(expiry) + 60), mac])))
    assert info.value.status == 401


@pytest.mark.parametrize("garbage", ["", "v1", "v1.Kg.notanumber.abc", "v2.Kg.1700003600.abc", "v1.Kg.1700003600.é"])
def test_a_malformed_ticket_is_401(garbage: str) -> None:
    with pytest.raises(Denied) as info:
        gate().ticket_scope(garbage)
    assert info.value.status == 401


def test_every_worker_of_one_configuration_accepts_the_others_tickets() -> None:
    """The key is derived from the configuration, not drawn at start: restarts and other workers agree."""
    assert gate(dict(reversed(list(TOKENS.items())))).scope(ticket(gate().issue("*"))) == "*"


def test_changing_the_tokens_revokes_tickets() -> None:
    issued = gate().issue("*")
    with pytest.raises(Denied):
        gate({"t-yuhu": "yuhu", "t-office-2026": "*"}).scope(ticket(issued))


def test_the_ticket_secret_signs_tickets() -> None:
    """With HOTLINE_TICKET_SECRET set, knowing the token map is not enough to forge a ticket."""
    assert ticket_key(TOKENS, "s3cret") != ticket_key(TOKENS, None)
    with pytest.raises(Denied):
        gate(secret="s3cret").scope(ticket(gate().issue("*")))
    assert gate(secret="s3cret").scope(ticket(gate(secret="s3cret").issue("*"))) == "*"


def test_a_token_presented_with_a_ticket_decides() -> None:
    """Opening a link with another token switches the browser to it, whatever cookie it holds."""
    both = Credential(token="t-yuhu", ticket=gate().issue("*"))
    assert gate().scope(both) == "yuhu"


def test_no_ticket_is_valid_without_configured_tokens() -> None:
    with pytest.raises(Denied):
        gate({}).scope(ticket(gate({}).issue("*")))


def test_shortening_the_lifetime_shortens_tickets_already_out() -> None:
    issued = gate(ttl_s=12 * 3600).issue("*")
    with pytest.raises(Denied):
        gate(ttl_s=3600).scope(ticket(issued))


@pytest.mark.parametrize("forged", ["v1.x.²³.y", "v1.x.١٢٣.y", "v1..", "v1.\x00.1.y"])
def test_a_malformed_ticket_is_401_not_an_error(forged: str) -> None:
    with pytest.raises(Denied) as info:
        gate().scope(ticket(forged))
    assert info.value.status == 401 and "not valid" in info.value.reason
