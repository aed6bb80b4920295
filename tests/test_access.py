"""Access policies: every path that touches data asks first; denials name the principal, the
feature and the rule, and read nothing; every decision is in the audit log."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from conftest import delta_min_values
from experiment_scenario import T0
from pyspark.sql import functions as F

from fs_spark import (
    Entity,
    Feature,
    FeatureLookup,
    FeatureStore,
    FeatureTable,
    open_training_set,
)
from fs_spark.catalog.schema import AUDIT_LOG
from fs_spark.cli import main
from fs_spark.config import GovernanceSettings, Settings, StoreSettings
from fs_spark.errors import AccessDeniedError, ConfigError, ValidationError
from fs_spark.governance.policies import load_policy

pytestmark = pytest.mark.slow  # every path to data under a policy, end to end

CUSTOMERS = FeatureTable(
    name="customers",
    entity=Entity(name="customer", keys={"customer_id": "long"}),
    event_time="ts",
    features=[Feature(name="spend", dtype="double"), Feature(name="email", dtype="string", tags=("pii",))],
)
SECRETS = FeatureTable(
    name="secrets",
    entity=Entity(name="customer", keys={"customer_id": "long"}),
    event_time="ts",
    features=[Feature(name="score", dtype="double")],
)
POLICY = """
principals:
  alice: {roles: [analyst]}
  bob: {roles: [engineer]}
  root: {roles: [admin]}
rules:
  - {name: analysts_read_customers, roles: [analyst], actions: [read], tables: ["customers"]}
  - {name: engineers_work, roles: [engineer], actions: [read, write], tables: ["customers", "secrets"]}
  - {name: admins, roles: [admin], actions: [read, write, deprecate, admin]}
  - {name: no_pii_for_analysts, roles: [analyst], actions: [read], tags: [pii], effect: deny}
regions:
  secrets: [eu-west-1]
"""


@pytest.fixture(scope="module")
def governed(spark, tmp_path_factory):
    folder = tmp_path_factory.mktemp("governed")
    (folder / "policies.yaml").write_text(POLICY)

    def as_user(user, region="eu-west-1"):
        settings = Settings(store=StoreSettings(root=str(folder / "store"), user=user),
                            governance=GovernanceSettings(policy_file=str(folder / "policies.yaml"), region=region))
        return FeatureStore(spark=spark, settings=settings)

    root = as_user("root")
    root.apply(CUSTOMERS, SECRETS)
    root.write("customers", spark.createDataFrame([(1, T0, 5.0, "a@x.org")], "customer_id long, ts timestamp, spend double, email string"))
    root.write("secrets", spark.createDataFrame([(1, T0, 0.9)], "customer_id long, ts timestamp, score double"))
    entities = spark.createDataFrame([(1, T0)], "customer_id long, ts timestamp")
    built = root.create_training_set(entities, ["customers:spend", "customers:email"])
    return as_user, entities, built, folder


def _audit(store, principal):
    return [(r["action"], r["object"], r["decision"], r["rule"]) for r in store._catalog.rows(AUDIT_LOG.name)
            if r["principal"] == principal]


def test_allowed_reads_work_and_are_audited(governed):
    as_user, *_ = governed
    alice = as_user("alice")
    assert alice.read("customers", features=["spend"]).first()["spend"] == 5.0
    assert ("read", "customers:spend", "allow", "analysts_read_customers") in _audit(alice, "alice")


@pytest.mark.parametrize("path", ["read_all", "time_travel", "string_lookup", "renamed_lookup", "stored_training_set",
                                  "rebuild_training_set", "arrow_read", "arrow_training_set", "open_training_set"])
def test_every_read_path_to_a_denied_feature_is_refused(governed, path):
    as_user, entities, built, _ = governed
    alice = as_user("alice")
    attempts = {
        "read_all": lambda: alice.read("customers"),
        "time_travel": lambda: alice.read("customers", version=1, features=["email"]),
        "string_lookup": lambda: alice.create_training_set(entities, ["customers:email"]),
        "renamed_lookup": lambda: alice.create_training_set(entities, [FeatureLookup(
            table_name="customers", feature_names=["email"], rename_outputs={"email": "contact"})]),
        "stored_training_set": lambda: alice.training_set(built.id),
        "rebuild_training_set": lambda: alice.load_training_set(built.id),
        "arrow_read": lambda: alice.read_arrow("customers", features=["email"]),
        "arrow_training_set": lambda: alice.open_training_set(built.id),
        "open_training_set": lambda: open_training_set(built.id, settings=alice.settings),
    }
    with pytest.raises(AccessDeniedError, match="'alice' may not read feature customers.email: denied by 'no_pii_for_analysts'"):
        attempts[path]()
    assert ("read", "customers:email", "deny", "no_pii_for_analysts") in _audit(alice, "alice")


def test_a_raw_table_path_as_entity_rows_is_a_read_of_that_table(governed, spark):
    as_user, _, _, _ = governed
    alice = as_user("alice")
    raw = spark.read.format("delta").load(alice.paths.table("secrets", 1)).select("customer_id", "ts")
    with pytest.raises(AccessDeniedError, match="may not read feature secrets.score: denied by 'default deny'"):
        alice.create_training_set(raw, ["customers:spend"])


def test_default_deny_writes_admin_and_regions(governed, spark):
    as_user, *_ = governed
    alice, bob = as_user("alice"), as_user("bob", region="us-east-1")
    with pytest.raises(AccessDeniedError, match="secrets.score: denied by 'default deny'"):
        alice.read("secrets")
    with pytest.raises(AccessDeniedError, match="may not write feature customers.spend"):
        alice.write("customers", spark.createDataFrame([(2, T0, 1.0, None)], "customer_id long, ts timestamp, spend double, email string"))
    assert alice.versions("customers")[-1].version_number == 1  # nothing written
    with pytest.raises(AccessDeniedError, match="may not admin"):
        bob.quarantine_version("customers", 1, "no")
    with pytest.raises(AccessDeniedError, match=r"regions of secrets: \['eu-west-1'\], not 'us-east-1'"):
        bob.read("secrets")
    assert as_user("bob").read("secrets").count() == 1  # from the allowed region
    with pytest.raises(AccessDeniedError, match="'mallory' may not read"):
        as_user("mallory").read("customers", features=["spend"])  # an unknown principal has no roles


def test_cli_denial_names_principal_feature_and_rule(governed, capsys):
    _, _, _, folder = governed
    import os

    os.environ["FS_SPARK_GOVERNANCE__POLICY_FILE"] = str(folder / "policies.yaml")
    try:
        code = main(["--root", str(folder / "store"), "--user", "alice", "read", "customers"])
    finally:
        del os.environ["FS_SPARK_GOVERNANCE__POLICY_FILE"]
    assert code == 2
    assert "AccessDeniedError: principal 'alice' may not read feature customers.email" in capsys.readouterr().err


def test_malformed_policy_is_a_config_error(tmp_path):
    (tmp_path / "bad.yaml").write_text("rules:\n  - {name: x, roles: [a], actions: [steal]}\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_policy(tmp_path / "bad.yaml")
    (tmp_path / "typo.yaml").write_text("principal: {}\n")
    with pytest.raises(ConfigError, match="principal"):
        load_policy(tmp_path / "typo.yaml")


def test_a_training_set_copied_to_a_region_the_table_may_not_go_is_refused(governed, tmp_path):
    as_user, entities, _, folder = governed
    settings = as_user("root").settings
    governance = settings.governance.model_copy(update={"locations": {str(tmp_path / "us") + "*": "us-east-1"}})
    root = FeatureStore(spark=entities.sparkSession, settings=settings.model_copy(update={"governance": governance}))
    with pytest.raises(AccessDeniedError, match=r"secrets.score: denied by \"regions of secrets: \['eu-west-1'\], no copy to 'us-east-1'\""):
        root.create_training_set(entities, ["secrets:score"], path=str(tmp_path / "us" / "ts"))
    built = root.create_training_set(entities, ["secrets:score"], path=str(tmp_path / "eu" / "ts"))  # unmapped: eu-west-1
    assert built.load_df().first()["score"] == 0.9


def test_exports_are_reads_that_leave_the_store(governed, tmp_path):
    as_user, _, built, _ = governed
    alice = as_user("alice")
    with pytest.raises(AccessDeniedError, match="may not read feature customers.email: denied by 'no_pii_for_analysts'"):
        alice.export("customers", str(tmp_path / "all"))
    with pytest.raises(AccessDeniedError, match="customers.email"):
        alice.export_training_set(built.id, str(tmp_path / "ts"))
    assert not (tmp_path / "all").exists() and not (tmp_path / "ts").exists()
    assert alice.export("customers", str(tmp_path / "spend"), features=["spend"]).row_count == 1
    settings = as_user("root").settings
    governance = settings.governance.model_copy(update={"locations": {str(tmp_path / "us") + "*": "us-east-1"}})
    root = FeatureStore(spark=built.load_df().sparkSession, settings=settings.model_copy(update={"governance": governance}))
    with pytest.raises(AccessDeniedError, match=r"no copy to 'us-east-1'"):
        root.export("secrets", str(tmp_path / "us" / "secrets"))
    assert not (tmp_path / "us").exists()
    assert ("read", "secrets:score", "deny", "regions of secrets: ['eu-west-1'], no copy to 'us-east-1'") in _audit(root, "root")


@pytest.mark.slow
def test_jobs_refuse_a_denied_principal_under_spark_submit_and_in_process(governed, spark, tmp_path, monkeypatch):
    """The jobs take the principal and the policy from settings, like the library."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from fs_spark.session import submit_args

    as_user, entities, _, folder = governed
    project = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(project / "jobs"))
    import drift_check
    import ingest

    entity_path = str(tmp_path / "entities")
    entities.write.format("delta").save(entity_path)
    spec = tmp_path / "spec.yaml"
    spec.write_text("feature_lookups:\n  - customers:spend\n  - customers:email\n")
    governed_env = {"FS_SPARK_STORE__USER": "alice", "FS_SPARK_GOVERNANCE__POLICY_FILE": str(folder / "policies.yaml"),
                    "FS_SPARK_GOVERNANCE__REGION": "eu-west-1"}
    env = {**os.environ, **governed_env, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
    command = [str(Path(sys.executable).parent / "spark-submit"), "--master", "local[2]", *submit_args(),
               "jobs/build_training_set.py", "--root", str(folder / "store"), "--entities", entity_path,
               "--spec", str(spec), "--output", str(tmp_path / "out")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=project, env=env)
    assert done.returncode == 2, done.stderr[-3000:]
    # spark-submit merges the Python driver's stderr into its stdout
    assert "build refused: AccessDeniedError: principal 'alice' may not read feature customers.email: " \
           "denied by 'no_pii_for_analysts'" in done.stdout, done.stdout[-3000:]
    assert not (tmp_path / "out").exists()
    assert ("read", "customers:email", "deny", "no_pii_for_analysts") in _audit(as_user("root"), "alice")

    for name, value in governed_env.items():
        monkeypatch.setenv(name, value)
    batch = str(tmp_path / "batch.parquet")
    spark.createDataFrame([(2, T0, 1.0, None)], "customer_id long, ts timestamp, spend double, email string").write.parquet(batch)
    assert ingest.main(["--root", str(folder / "store"), "--table", "customers", "--input", batch]) == 2
    assert drift_check.main(["--root", str(folder / "store"), "--table", "secrets"]) == 2
    assert as_user("root").versions("customers")[-1].version_number == 1  # nothing written
    decisions = _audit(as_user("root"), "alice")
    assert ("write", "customers:spend", "deny", "default deny") in decisions
    assert ("read", "secrets:score", "deny", "default deny") in decisions


def test_the_parts_that_change_definitions_or_schedules_are_not_public_doors(governed):
    as_user, *_ = governed
    alice = as_user("alice")
    public = {name for name in dir(alice) if not name.startswith("_")}
    assert not public & {"registry", "access"} and callable(alice.deprecations)  # a listing, not the part
    with pytest.raises(AccessDeniedError, match="'alice' may not admin feature customers"):
        alice.catalog.rows(AUDIT_LOG.name)  # raw rows: every version's statistics, every audit row
    with pytest.raises(AccessDeniedError, match="may not admin feature customers"):
        alice.apply(CUSTOMERS.with_(description="changed"))
    with pytest.raises(AccessDeniedError, match="may not deprecate feature customers.spend"):
        alice.deprecate("customers", "spend", announce=T0, end=T0, reason="x")
    # The parts check where the action happens too, so reaching past the facade changes nothing.
    with pytest.raises(AccessDeniedError, match="may not admin feature customers"):
        alice._registry.apply([CUSTOMERS.with_(description="changed")])
    with pytest.raises(AccessDeniedError, match="may not deprecate feature customers.spend"):
        alice._deprecations.schedule("customers", "spend", announce=T0, end=T0, replacement=None, reason="x")
    root = as_user("root")
    assert root.get_table("customers").description == "" and root.deprecations() == []
    assert root.catalog.rows(AUDIT_LOG.name)  # an administrator of every table opens it


def test_statistics_of_a_feature_are_its_data(governed, spark):
    as_user, *_ = governed
    root, alice = as_user("root"), as_user("alice")
    second = root.write("customers", spark.createDataFrame(
        [(2, T0, 5.0, "b@y.org"), (3, T0, 9.0, None)], "customer_id long, ts timestamp, spend double, email string"))
    # pii: no min or max is stored at all, for anyone, in the catalog or the Delta log
    email = root.versions("customers")[-1].stats["features"]["email"]
    assert (email["min"], email["max"], email["null_count"]) == (None, None, None)  # Delta keeps no stats of it
    assert root.versions("customers")[-1].stats["features"]["spend"]["max"] == 9.0
    log = os.path.join(root.paths.table("customers", 1).removeprefix("file:"), "_delta_log")
    for name in os.listdir(log):
        if name.endswith(".json"):
            text = open(os.path.join(log, name)).read()
            assert "b@y.org" not in text and "a@x.org" not in text
    # a principal who may not read a feature gets none of its statistics
    seen = alice.version("customers", second.version_id).stats["features"]
    assert seen["email"] == {"min": None, "max": None, "null_count": None, "redacted": True}
    assert seen["spend"]["max"] == 9.0
    assert alice.versions("customers")[-1].stats["features"]["email"]["redacted"]
    # drift of a pii feature keeps no category values; its alerts show no figures to alice
    report = root.quality.check_drift("customers")
    assert report.feature("email").new_categories == ("b@y.org",)  # root may read it: the report shows it
    stored = [r for r in root.catalog.rows("drift_scores") if r["feature"] == "email"]
    assert stored and all(r["new_categories"] == [] for r in stored)
    email_alerts = [a for a in alice.quality.alerts("customers") if a["feature"] == "email"]
    assert email_alerts and all(a["value"] is None for a in email_alerts)
    assert any(a["value"] is not None for a in root.quality.alerts("customers") if a["feature"] == "email")
    psi = {name: report.feature(name).psi for name in ("spend", "email")}
    worst = {who: [r.worst_psi for r in store.quality.scoreboard("customers").rows if r.version_id == second.version_id]
             for who, store in (("root", root), ("alice", alice))}
    assert worst == {"root": [max(psi.values())], "alice": [psi["spend"]]} and psi["email"] != psi["spend"]


def test_a_refused_write_shows_no_value_of_a_sensitive_feature(governed, spark):
    """A validation error's examples are values: those of a pii feature are withheld, in the
    error and in the `metrics` row that keeps it, as its statistics are."""
    as_user, *_ = governed
    root = as_user("root")
    salaries = FeatureTable(
        name="salaries", entity=Entity(name="customer", keys={"customer_id": "long"}), event_time="ts",
        features=[Feature(name="salary", dtype="double", min_value=0, max_value=500_000, tags=("pii",)),
                  Feature(name="bonus", dtype="double", min_value=0, max_value=100_000)],
        rules=[{"name": "bonus_below_salary", "expression": "bonus <= salary"}])
    root.apply(salaries)
    rows = [(1, T0, 987_654.5, 12.5),   # salary out of range: a pii value
            (2, T0, 1000.25, 4321.75),  # bonus above salary: the example would show both
            (3, T0, 2000.0, -3.5)]      # bonus out of range: not sensitive, shown
    with pytest.raises(ValidationError) as refused:
        root.write("salaries", spark.createDataFrame(rows, "customer_id long, ts timestamp, salary double, bonus double"))
    examples = {(v.feature, v.rule): v.example for v in refused.value.violations}
    assert examples == {
        ("salary", "range[0.0, 500000.0]"): "withheld (salary: tagged sensitive)",
        ("bonus_below_salary", "rule[bonus <= salary]"): "withheld (salary: tagged sensitive)",
        ("bonus", "range[0.0, 100000.0]"): "-3.5",
    }
    kept = [r["error"] for r in root.catalog.rows("metrics") if r["table_name"] == "salaries" and r["error_class"]]
    for message in (str(refused.value), *kept):
        assert "-3.5" in message and not any(value in message for value in ("987654", "1000.25", "4321.75"))
    assert len(kept) == 1
    assert "e.g." not in refused.value.without_values()  # what lineage events carry: no example at all
    # a long that a double cannot hold exactly: the source value is the pii value
    with pytest.raises(ValidationError) as inexact:
        root.write("salaries", spark.createDataFrame([(4, T0, 2**53 + 1, 1.0)],
                                                     "customer_id long, ts timestamp, salary long, bonus double"),
                   cast="safe")
    assert {(v.rule, v.example) for v in inexact.value.violations} == {
        ("exact[long->double]", "withheld (salary: tagged sensitive)"),
        ("range[0.0, 500000.0]", "withheld (salary: tagged sensitive)")}
    assert str(2**53 + 1) not in str(inexact.value)


def _delta_log_text(path: str) -> str:
    log = os.path.join(path.removeprefix("file:"), "_delta_log")
    return "".join(open(os.path.join(log, n)).read() for n in sorted(os.listdir(log)) if n.endswith(".json"))


def test_quarantined_rows_keep_no_statistics_of_a_sensitive_feature_also_after_tagging(governed, spark):
    as_user, *_ = governed
    root = as_user("root")
    bonuses = FeatureTable(
        name="bonuses", entity=Entity(name="customer", keys={"customer_id": "long"}), event_time="ts",
        features=[Feature(name="salary", dtype="double", min_value=0, tags=("pii",)),
                  Feature(name="bonus", dtype="double", min_value=0)])
    root.apply(bonuses)
    schema = "customer_id long, ts timestamp, salary double, bonus double"
    root.write("bonuses", spark.createDataFrame([(1, T0, -987_654.5, 10.0), (2, T0, 100.0, -3.5), (3, T0, 5.0, 1.0)],
                                                schema), mode="quarantine")
    quarantine = root.paths.quarantine("bonuses", 1)
    held = spark.read.format("delta").load(quarantine)
    assert sorted((r["customer_id"], r["salary"], r["bonus"]) for r in held.collect()) == [
        (1, -987_654.5, 10.0), (2, 100.0, -3.5)]  # the bad rows are kept whole, as data
    log = _delta_log_text(quarantine)
    assert "987654" not in log and "-3.5" in log  # statistics of bonus, none of salary

    root.apply(bonuses.with_(features=[bonuses.features[0], bonuses.features[1].model_copy(update={"tags": ("pii",)})]))
    root.write("bonuses", spark.createDataFrame([(4, T0, 7.0, -777.25), (5, T0, 8.0, 4242.5)], schema),
               mode="quarantine")
    assert "777.25" not in _delta_log_text(quarantine)  # tagged now: no statistics of bonus from here on
    assert "4242.5" not in _delta_log_text(root.paths.table("bonuses", 1))
    assert root.versions("bonuses")[-1].stats["features"]["bonus"]["max"] is None


def test_a_training_set_keeps_no_statistics_of_a_sensitive_feature(governed, spark):
    as_user, entities, built, _ = governed
    root = as_user("root")
    data = root.paths.training_set(built.id, "data")
    assert "a@x.org" not in _delta_log_text(data)
    assert set(delta_min_values(data)) == {"_fs_row", "customer_id", "ts", "spend"} and delta_min_values(data)["spend"] == 5.0
    renamed = root.create_training_set(entities, [FeatureLookup(
        table_name="customers", feature_names=["email", "spend"], rename_outputs={"email": "contact"})])
    data = root.paths.training_set(renamed.id, "data")
    assert "a@x.org" not in _delta_log_text(data) and "contact" not in delta_min_values(data) and "spend" in delta_min_values(data)
    assert renamed.load_df().first()["contact"] == "a@x.org"  # the value itself is the training set's data


@pytest.mark.slow
def test_questions_answered_without_spark_are_under_the_same_policy(governed):
    """The command line answers catalog questions without starting Spark (here it cannot: no
    jars), and those answers go through the same access checks as every other path."""
    import json as json_module
    import os
    import subprocess
    import sys

    _, _, _, folder = governed
    env = {**os.environ, "FS_SPARK_SPARK__JARS_DIR": os.devnull,
           "FS_SPARK_GOVERNANCE__POLICY_FILE": str(folder / "policies.yaml"), "FS_SPARK_GOVERNANCE__REGION": "eu-west-1"}

    def answer(user, *argv):
        return subprocess.run([sys.executable, "-m", "fs_spark.cli", "--root", str(folder / "store"), "--user", user,
                               *argv], capture_output=True, text=True, env=env, timeout=120)

    listed = json_module.loads(answer("alice", "versions", "customers", "--json").stdout.splitlines()[0])  # version 1
    features = json_module.loads(listed["stats_json"])["features"]
    assert features["spend"]["min"] == 5.0 and features["email"].get("redacted") is True  # pii withheld from alice
    as_root = json_module.loads(answer("root", "versions", "customers", "--json").stdout.splitlines()[0])
    assert "redacted" not in json_module.loads(as_root["stats_json"])["features"]["email"]
    refused = answer("alice", "quarantine", "customers", "1", "--reason", "x")
    assert refused.returncode == 2 and refused.stderr.startswith("fs-spark: AccessDeniedError: principal 'alice'")
    assert "DeltaJarsMissing" not in refused.stderr


def test_online_reads_and_materialization_are_under_the_policy(governed):
    as_user, *_ = governed
    root, alice = as_user("root"), as_user("alice")
    keys = root.read("customers").select("customer_id").distinct().count()  # other tests here add keys
    assert keys >= 1 and root.materialize("customers").keys_written == keys
    with pytest.raises(AccessDeniedError, match="alice"):
        alice.materialize("customers")
    assert alice.get_online_features(["customers:spend"], [{"customer_id": 1}])["spend"] == [5.0]
    with pytest.raises(AccessDeniedError, match="customers.email"):
        alice.get_online_features(["customers:email"], [{"customer_id": 1}])
    assert ("read", "customers:email", "deny", "no_pii_for_analysts") in _audit(alice, "alice")
    # every other public path to online values: a deployment's vector, a feature service, the CLI
    _, _, built, folder = governed
    model = root.register_model("churn", training_sets=[built])  # trained on spend and email
    root.deploy(model.model_version_id, "prod")
    with pytest.raises(AccessDeniedError, match="customers.email"):
        alice.online_vector("prod", [{"customer_id": 1}])
    from fs_spark import FeatureService

    root.apply(FeatureService(name="contact", lookups=["customers:email"]))
    with pytest.raises(AccessDeniedError, match="customers.email"):
        alice.get_online_features(list(alice.feature_service("contact").lookups), [{"customer_id": 1}])
    assert root.online_vector("prod", [{"customer_id": 1}])["email"] == ["a@x.org"]
    import os
    import subprocess
    import sys

    env = {**os.environ, "FS_SPARK_SPARK__JARS_DIR": os.devnull,
           "FS_SPARK_GOVERNANCE__POLICY_FILE": str(folder / "policies.yaml"), "FS_SPARK_GOVERNANCE__REGION": "eu-west-1"}
    refused = subprocess.run([sys.executable, "-m", "fs_spark.cli", "--root", str(folder / "store"), "--user", "alice",
                              "get-online-features", "-f", "customers:email", "-e", "customer_id=1"],
                             capture_output=True, text=True, env=env, timeout=120)
    assert refused.returncode == 2 and refused.stderr.startswith("fs-spark: AccessDeniedError: principal 'alice'")


def test_search_lists_only_the_features_the_principal_may_read(governed):
    as_user, *_ = governed
    assert as_user("alice").search("email") == []  # pii is denied to analysts
    assert [h.name for h in as_user("alice").search("spend")] == ["customers:spend"]
    assert [h.name for h in as_user("root").search("email")] == ["customers:email"]
    assert as_user("alice").search("secrets") == []  # no rule lets analysts read the table at all


def test_streams_and_backfills_are_under_the_policy(governed, spark, tmp_path):
    as_user, *_ = governed
    root, alice, bob = as_user("root"), as_user("alice"), as_user("bob")
    rate = spark.readStream.format("rate").load()
    batch = spark.createDataFrame([(7, T0, 1.0, "b@x.org")], "customer_id long, ts timestamp, spend double, email string")
    with pytest.raises(AccessDeniedError, match="alice.*write"):
        alice.write_stream("customers", rate)
    with pytest.raises(AccessDeniedError, match="alice.*write"):
        alice.backfill("customers", batch, T0, T0 + timedelta(days=1))
    with pytest.raises(AccessDeniedError, match="bob.*admin"):  # write-through materializes: admin's right
        bob.write_stream("customers", rate, online=True)
    assert spark.streams.active == []
    # The streams' figures are shown to whoever may read their table, and to no one else.
    for table, rows in (("customers", batch), ("secrets", batch.select("customer_id", "ts", F.lit(0.5).alias("score")))):
        upstream = str(tmp_path / table)
        rows.write.format("delta").save(upstream)
        root.write_stream(table, spark.readStream.format("delta").load(upstream), available_now=True).await_termination()
    assert {s.table for s in root.streams()} == {"customers", "secrets"}
    assert {s.table for s in alice.streams()} == {"customers"}
