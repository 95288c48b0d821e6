"""The launcher's configuration of a node (no broker runs here): layout, quorum, ports, replication."""

from __future__ import annotations

from pathlib import Path

from hotline.deploy import kafka
from hotline.settings import Settings


def _cluster(tmp_path: Path, **extra: object) -> Settings:
    return Settings(
        var_dir=tmp_path,
        kafka_bootstrap="127.0.0.1:29092,127.0.0.1:29192,127.0.0.1:29292",
        kafka_controller_port=29093,
        kafka_brokers=3,
        **extra,
    )


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_a_single_node_keeps_its_files_directly_under_var_kafka(tmp_path: Path) -> None:
    (node,) = kafka.nodes(Settings(var_dir=tmp_path))
    assert node.paths.data == tmp_path.resolve() / "kafka" / "data"


def test_each_node_of_a_cluster_has_its_own_data_dir_and_shares_the_jars(tmp_path: Path) -> None:
    cluster = kafka.nodes(_cluster(tmp_path))
    assert [n.paths.data for n in cluster] == [
        tmp_path.resolve() / "kafka" / "cluster-3" / f"node-{i}" / "data" for i in (1, 2, 3)
    ]
    assert {n.paths.libs for n in cluster} == {tmp_path.resolve() / "kafka" / "libs"}


def test_every_node_votes_in_the_quorum(tmp_path: Path) -> None:
    settings = _cluster(tmp_path)
    props = _props(kafka.server_properties(settings, kafka.nodes(settings)[1]))
    assert props["node.id"] == "2"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:29093,2@127.0.0.1:29193,3@127.0.0.1:29293"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:29192,CONTROLLER://127.0.0.1:29193"


def test_a_cluster_of_three_replicates_its_own_topics_three_times(tmp_path: Path) -> None:
    settings = _cluster(tmp_path)
    props = _props(kafka.server_properties(settings, kafka.nodes(settings)[0]))
    assert props["default.replication.factor"] == props["offsets.topic.replication.factor"] == "3"
    assert props["min.insync.replicas"] == props["transaction.state.log.min.isr"] == "2"


def test_a_bootstrap_of_the_rules_local_ports_is_managed(tmp_path: Path) -> None:
    assert kafka.managed(_cluster(tmp_path).model_copy(update={"kafka_brokers": 1}))


def test_local_ports_off_the_rule_are_an_external_cluster() -> None:
    assert not kafka.managed(Settings(kafka_bootstrap="127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094"))


def test_a_remote_host_is_external() -> None:
    assert not kafka.managed(Settings(kafka_bootstrap="kafka-1.internal:9092"))


def test_clients_of_the_local_cluster_bootstrap_from_every_node(tmp_path: Path) -> None:
    settings = _cluster(tmp_path).model_copy(update={"kafka_bootstrap": "127.0.0.1:29092"})
    assert kafka.local_bootstrap(settings) == "127.0.0.1:29092,127.0.0.1:29192,127.0.0.1:29292"


def test_the_local_nodes_are_spoken_to_in_plaintext_whatever_the_security_settings() -> None:
    settings = Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="PLAIN", kafka_sasl_username="u")
    assert kafka.client_options(settings) == {"bootstrap_servers": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"}


def test_an_external_cluster_gets_the_settings_client_options() -> None:
    settings = Settings(
        kafka_bootstrap="kafka-1.internal:9092",
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="u",
        kafka_sasl_password="p",
    )
    assert kafka.client_options(settings) == settings.kafka_client_options()


def test_maven_resolves_the_jars_from_the_packaged_pom() -> None:
    assert kafka.POM.name == "pom.xml" and kafka.POM.parent == Path(kafka.__file__).parents[1]
    assert kafka.POM.is_file()


def test_a_node_is_prepared_with_its_files_and_run_as_kafka_kafka_on_them(tmp_path: Path) -> None:
    from hotline.deploy.kafka.config import prepare

    settings = Settings(var_dir=tmp_path)
    (node,) = kafka.nodes(settings)
    p = node.paths
    p.data.mkdir(parents=True)
    (p.data / "meta.properties").write_text("")  # formatted already: no storage tool (no JVM here)
    cmd = prepare(settings, node, "/opt/java/bin/java")
    assert p.props.read_text() == kafka.server_properties(settings, node)
    assert p.log4j.read_text() == kafka.LOG4J2_PROPERTIES
    assert cmd == [
        "/opt/java/bin/java", *kafka.JVM_OPTS, f"-Dlog4j2.configurationFile={p.log4j}",
        "-cp", str(p.libs / "*"), kafka.BROKER_MAIN, str(p.props),
    ]  # fmt: skip
