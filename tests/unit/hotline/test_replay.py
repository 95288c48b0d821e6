from hotline.replay import behind


def test_behind_names_each_partition_not_yet_sunk() -> None:
    expected = {("orders", 0): 9, ("orders", 1): 4, ("calls", 0): 2}
    assert behind(expected, {("orders", 0): 9, ("orders", 1): 3}) == {"orders[1]": "3/4", "calls[0]": "-1/2"}
    assert behind(expected, {("orders", 0): 10, ("orders", 1): 4, ("calls", 0): 2}) == {}
