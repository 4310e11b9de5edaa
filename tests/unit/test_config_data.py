"""The data_source key (docs/data-safety.md): what a good one gives the daemon, and every way a bad
one is reported with file, key path and reason before anything runs."""
import pytest

from vipd.config import ConfigIssue, DataSourceConfig, loads
from test_config import PATH, doc, issues_of

GATED = {"failback_gate": '["nginx"]'}


def test_good_data_source_defaults_and_ipv6():
    cfg = loads(doc({"data_source": '{ redis = "127.0.0.1:6379" }', **GATED}), PATH)
    ds = cfg.instances[0].data_source
    assert ds == DataSourceConfig(redis="127.0.0.1:6379")
    assert (ds.host, ds.port, ds.peer_redis_port, ds.timeout) == ("127.0.0.1", 6379, 6379, 0.5)
    ds = loads(doc({"data_source": '{ redis = "[2001:db8::1]:7000", peer_port = 6380, '
                                   'password_env = "REDISCLI_AUTH", timeout = 0.2 }',
                    "failback": '"none"'}), PATH).instances[0].data_source
    assert (ds.host, ds.port, ds.peer_redis_port) == ("2001:db8::1", 7000, 6380)
    assert loads(doc(), PATH).instances[0].data_source is None


@pytest.mark.parametrize("value,key,reason", [
    ('"127.0.0.1:6379"', "instance[0].data_source", "must be an inline table"),
    ('{ peer_port = 6379 }', "instance[0].data_source.redis", "required key is missing"),
    ('{ redis = "127.0.0.1:70000" }', "instance[0].data_source.redis", 'must be "HOST"'),
    ('{ redis = 6379 }', "instance[0].data_source.redis", 'must be "HOST"'),
    ('{ redis = "127.0.0.1", password_env = "A B" }', "instance[0].data_source.password_env",
     "environment variable"),
    ('{ redis = "127.0.0.1:6379", peer_port = 0 }', "instance[0].data_source.peer_port", ""),
    ('{ redis = "127.0.0.1:6379", timeout = 30 }', "instance[0].data_source.timeout", ""),
    ('{ redis = "127.0.0.1:6379", password_env = "A", password_file = "/etc/p" }',
     "instance[0].data_source.password_file", "not both"),
    ('{ redis = "127.0.0.1:6379", pasword_env = "A" }', "instance[0].data_source.pasword_env",
     'unknown key; did you mean "password_env"?'),
])
def test_bad_data_source_is_reported_with_its_path(value, key, reason):
    found = issues_of(doc({"data_source": value, **GATED}))
    assert [i.key for i in found] == [key] and found[0].file == PATH
    assert reason in found[0].reason


def test_data_source_with_auto_failback_needs_a_gate():
    found = issues_of(doc({"data_source": '{ redis = "127.0.0.1:6379" }'}))
    assert found == [ConfigIssue(PATH, "instance[0].data_source", found[0].reason)]
    assert "failback_gate is needed" in found[0].reason
    loads(doc({"data_source": '{ redis = "127.0.0.1:6379" }', "failback": '"semi-auto"'}), PATH)
