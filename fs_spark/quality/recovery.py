"""Recall and rollback: what a bad version reached, and making a good version current again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fs_spark.catalog.contents import ROLLBACK, refuse_quarantined
from fs_spark.catalog.records import FeatureVersion
from fs_spark.catalog.schema import FEATURE_VERSIONS
from fs_spark.errors import RollbackError
from fs_spark.ids import new_id
from fs_spark.lineage.graph import LineageGraph
from fs_spark.tracking.records import Deployment

if TYPE_CHECKING:
    from fs_spark.store import FeatureStore


@dataclass(frozen=True)
class Recall:
    """Everything that used one feature version's rows."""

    version: FeatureVersion
    training_set_ids: list[str]
    model_version_ids: list[str]
    deployments: list[Deployment]  # the latest record of each deployment reached
    live: list[Deployment]  # those still live in their environment

    def to_text(self) -> str:
        v = self.version
        lines = [
            f"{v.table_name} #{v.version_number} ({v.version_id}) reached {len(self.training_set_ids)} training set(s), "
            f"{len(self.model_version_ids)} model version(s), {len(self.deployments)} deployment(s), "
            f"{len(self.live)} live"
        ]
        lines += [f"  training set {t}" for t in self.training_set_ids]
        lines += [f"  model version {m}" for m in self.model_version_ids]
        lines += [
            f"  deployment {d.environment}: {d.model_name} v{d.model_version} ({'LIVE' if d in self.live else d.status})"
            for d in self.deployments
        ]
        return "\n".join(lines)


def recall(
    graph: LineageGraph, version: FeatureVersion, deployments: list[Deployment], live_now: list[Deployment]
) -> Recall:
    down = graph.downstream(f"feature_version:{version.version_id}")
    reached = down.ids("deployment")
    chosen = [d for d in deployments if d.deployment_id in reached]
    live = [d for d in chosen if d in live_now]
    return Recall(version, sorted(down.ids("training_set")), sorted(down.ids("model_version")), chosen, live)


def rollback(store: FeatureStore, table: str, to_version: int | str, reason: str) -> FeatureVersion:
    applied = store._registry.current(table)
    definition = applied.definition
    with store._writer.lock(table):
        target = store._exact(table, to_version)
        if target.definition_version != definition.definition_version:
            raise RollbackError(
                table,
                to_version,
                f"it belongs to definition version {target.definition_version}; "
                f"rollbacks stay within the current one ({definition.definition_version})",
            )
        every = store._catalog.versions(table)
        series = [v for v in every if v.definition_version == definition.definition_version]
        last = series[-1]
        if last.version_id == target.version_id:
            raise RollbackError(table, to_version, "it is already the latest version")
        refuse_quarantined(every, target, store._catalog.quarantined())
        record = FeatureVersion(
            version_id=new_id(),
            table_name=table,
            definition_version=definition.definition_version,
            definition_revision=applied.revision,
            version_number=last.version_number + 1,
            delta_version=last.delta_version,
            committed_at=datetime.now(UTC),
            storage_path=applied.storage_path,
            write_id=f"rollback:{target.version_id}:{new_id()}",
            mode=ROLLBACK,
            row_count=0,
            schema_hash=target.schema_hash,
            user=store.user,
            source_description=f"rollback to #{target.version_number} ({target.version_id}): {reason}",
            restores_version=target.version_number,
        )
        store._catalog.append(FEATURE_VERSIONS, [record.to_row()])
    return record
