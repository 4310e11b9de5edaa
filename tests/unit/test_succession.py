"""Whose Redis is newer (vipd/core/succession.py): real INFO text, PSYNC2 facts, and properties
over a small model of Redis replication histories."""
import pytest
from hypothesis import given, settings, strategies as st

from redismodel import Node
from vipd.core.succession import (
    NO_REPLID, BadInfo, ReplInfo, Verdict, compare, parse_info,
)

# redis-server 7.0.15 after `REPLICAOF NO ONE` on a replica that had replicated 1234 bytes
PROMOTED = """# Replication\r
role:master\r
connected_slaves:0\r
master_failover_state:no-failover\r
master_replid:9f1c3a5e0d1b2c3d4e5f60718293a4b5c6d7e8f9\r
master_replid2:1111111111111111111111111111111111111111\r
master_repl_offset:1500\r
second_repl_offset:1235\r
repl_backlog_active:1\r
repl_backlog_size:1048576\r
repl_backlog_first_byte_offset:1\r
repl_backlog_histlen:1500\r
# Keyspace\r
db0:keys=12,expires=0,avg_ttl=0\r
db3:keys=3,expires=1,avg_ttl=100\r
"""
OLD_PRIMARY = ReplInfo("master", "1" * 40, NO_REPLID, -1, 1300, keys=14)


def test_parse_info_reads_promotion_fields_and_sums_keys():
    info = parse_info(PROMOTED)
    assert info == ReplInfo("master", "9f1c3a5e0d1b2c3d4e5f60718293a4b5c6d7e8f9", "1" * 40, 1235,
                            1500, keys=15)
    assert not info.empty


def test_parse_info_without_keyspace_is_empty_and_bad_text_is_rejected():
    text = PROMOTED.split("# Keyspace")[0]
    assert parse_info(text).empty
    with pytest.raises(BadInfo, match="master_replid"):
        parse_info("# Replication\r\nrole:master\r\nmaster_repl_offset:0\r\n")
    with pytest.raises(BadInfo):
        parse_info(text.replace("master_repl_offset:1500", "master_repl_offset:x"))


def test_successor_is_newer_whatever_the_offsets():
    promoted = parse_info(PROMOTED)
    # The stale primary kept accepting writes after the promotion (offset 1300 > 1235): those are
    # the writes the split cost; the successor still wins.
    assert compare(OLD_PRIMARY, promoted).verdict is Verdict.PEER_NEWER
    assert compare(promoted, OLD_PRIMARY).verdict is Verdict.OURS_NEWER
    assert "promoted from ours at offset 1235" in compare(OLD_PRIMARY, promoted).why


def test_replica_and_its_primary_have_not_diverged():
    replica = ReplInfo("slave", "1" * 40, NO_REPLID, -1, 1200, keys=14)
    assert compare(replica, OLD_PRIMARY).verdict is Verdict.SAME
    assert compare(OLD_PRIMARY, replica).verdict is Verdict.SAME


def test_empty_restart_loses_to_data_but_not_to_a_successor_relation():
    empty = ReplInfo("master", "2" * 40, NO_REPLID, -1, 0, keys=0)
    assert compare(empty, OLD_PRIMARY).verdict is Verdict.PEER_NEWER
    assert compare(OLD_PRIMARY, empty).verdict is Verdict.OURS_NEWER
    both_full = ReplInfo("master", "3" * 40, NO_REPLID, -1, 50, keys=1)
    assert compare(both_full, OLD_PRIMARY).verdict is Verdict.UNKNOWN
    assert compare(None, OLD_PRIMARY).verdict is Verdict.UNKNOWN
    assert compare(OLD_PRIMARY, None).verdict is Verdict.UNKNOWN


# ---- properties over a model of PSYNC2 histories -----------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 3), st.integers(0, 5)), max_size=8),
       st.integers(0, 5), st.integers(0, 5))
def test_promoted_side_wins_a_split_after_any_history(rounds, writes_a, writes_b):
    """Any sequence of failovers (who is primary, writes, replication), then a split: the replica
    is promoted, both sides take writes; the promoted side is always the newer one, from both
    sides' point of view."""
    a, b = Node(), Node()
    b.replicate_from(a)
    primary, replica = a, b
    for swap, writes, _ in rounds:
        for _ in range(writes):
            primary.write()
        replica.replicate_from(primary)
        if swap:                       # a clean failover: the replica is promoted
            replica.promote()
            primary.replicate_from(replica)
            primary, replica = replica, primary
    replica.promote()                  # the split: two primaries
    for _ in range(writes_a):
        primary.write()
    for _ in range(writes_b):
        replica.write()
    assert compare(primary.info(), replica.info()).verdict is Verdict.PEER_NEWER
    assert compare(replica.info(), primary.info()).verdict is Verdict.OURS_NEWER


infos = st.builds(ReplInfo, st.sampled_from(["master", "slave"]),
                  st.sampled_from(["1" * 40, "2" * 40, "3" * 40]),
                  st.sampled_from([NO_REPLID, "1" * 40, "2" * 40, "3" * 40]),
                  st.integers(-1, 100), st.integers(0, 100), st.integers(0, 3))


@given(st.one_of(st.none(), infos), st.one_of(st.none(), infos))
def test_compare_is_antisymmetric(x, y):
    assert compare(y, x).verdict is compare(x, y).verdict.flipped()


def test_empty_restart_never_wins_against_data_in_the_model():
    a, b = Node(), Node()
    a.write()
    b.replicate_from(a)
    a.restart_empty()                  # Redis killed, restarted without its data
    assert compare(a.info(), b.info()).verdict is Verdict.PEER_NEWER


def test_resp_replies_are_read_and_garbage_refused():
    """vipd/redisinfo.py reads the three reply kinds INFO/AUTH produce, from a real stream."""
    import asyncio
    from vipd.redisinfo import RedisError, resp_command, read_reply

    async def read(data):
        r = asyncio.StreamReader()
        r.feed_data(data)
        r.feed_eof()
        return await read_reply(r)

    assert resp_command("INFO", "replication") == b"*2\r\n$4\r\nINFO\r\n$11\r\nreplication\r\n"
    assert asyncio.run(read(b"+OK\r\n")) == "OK"
    assert asyncio.run(read(b"$5\r\nab\r\nc\r\n")) == "ab\r\nc"
    with pytest.raises(RedisError, match="NOAUTH"):
        asyncio.run(read(b"-NOAUTH Authentication required.\r\n"))
    with pytest.raises(RedisError):
        asyncio.run(read(b"$99999999\r\n"))
    with pytest.raises(RedisError):
        asyncio.run(read(b"HTTP/1.1 400\r\n"))


def test_arp_probe_frame_asks_for_the_vip_from_our_own_address():
    """vipd/net/arpwatch.py: the probe must not touch anyone's entry for the VIP."""
    import socket as s
    from vipd.net.arpwatch import arp_sender_filter, probe_frame
    mac = bytes.fromhex("020000000001")
    f = probe_frame(mac, "198.51.100.1", "198.51.100.100")
    assert f[:6] == b"\xff" * 6 and f[6:12] == mac and f[12:14] == b"\x08\x06"
    assert f[20:22] == b"\x00\x01"                                   # request
    assert f[22:28] == mac and f[28:32] == s.inet_aton("198.51.100.1")   # sender: us
    assert f[32:38] == b"\0" * 6 and f[38:42] == s.inet_aton("198.51.100.100")
    # the filter: 3 + one test per VIP + drop + accept; each VIP test jumps to accept
    prog = arp_sender_filter(["198.51.100.100", "198.51.100.101"])
    assert len(prog) == 7 * 8
