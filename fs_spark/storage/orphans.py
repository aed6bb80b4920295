"""Removing the data files a failed write left in a Delta table's folder.

Delta writes each task's files straight into the table folder and commits them in one log entry
at the end; when the job fails (a strict-mode refusal fails it on purpose), the files of the
tasks that finished stay behind, unlisted by the log, until a VACUUM. A refused batch should
leave nothing behind, so the writer removes them at once: every file under the folder (outside
`_delta_log`) modified since the write began that the table's current snapshot does not list.
The writer holds the table's lock, so no other fs_spark write can have made such a file.
"""

from __future__ import annotations

from pyspark.sql import SparkSession

from fs_spark.session import hadoop_conf, jvm
from fs_spark.storage.delta_log import latest_version


def _normal(uri: str) -> str:
    return uri.removeprefix("file:").replace("///", "/")


def remove_uncommitted(spark: SparkSession, path: str, since_millis: int) -> list[str]:
    """Delete the data files (and their checksum files) under `path` that are newer than
    `since_millis` and not in the table's current snapshot; return what was deleted."""
    root = jvm(spark).org.apache.hadoop.fs.Path(path)
    conf = hadoop_conf(spark)
    fs = root.getFileSystem(conf)
    if not fs.exists(root):
        return []
    committed: set[str] = set()
    if latest_version(spark, path) is not None:
        committed = {_normal(f) for f in spark.read.format("delta").load(path).inputFiles()}
    found = fs.listFiles(root, True)
    doomed = []
    while found.hasNext():
        status = found.next()
        file = status.getPath()
        uri = file.toString()
        if "/_delta_log/" in uri or status.getModificationTime() < since_millis:
            continue
        name = file.getName()
        data_name = name[1:].removesuffix(".crc") if name.startswith(".") and name.endswith(".crc") else name
        data_uri = uri[: len(uri) - len(name)] + data_name
        if _normal(data_uri) not in committed and data_name.startswith("part-"):
            doomed.append(file)
    for file in doomed:
        fs.delete(file, False)
    return [f.toString() for f in doomed]
