"""Recall: everything a suspect feature version's rows reached (rollback is `fs_spark.versions.rollback`)."""

from __future__ import annotations

from dataclasses import dataclass

from fs_spark.catalog.records import FeatureVersion
from fs_spark.lineage.graph import LineageGraph
from fs_spark.tracking.records import Deployment


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
