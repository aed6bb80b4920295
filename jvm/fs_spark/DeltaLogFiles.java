package fs_spark;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * Facts from a Delta table's log on any Hadoop filesystem (S3A, ABFS, HDFS), in one call from
 * Python: a listing or a GET, where asking Delta costs a Spark job for a table snapshot.
 */
public final class DeltaLogFiles {
  private static final Pattern COMMIT = Pattern.compile("^(\\d{20})\\.json$");

  private DeltaLogFiles() {}

  /** The version of the table's newest commit file, or -1 when the table has none. */
  public static long latestVersion(Configuration conf, String table) throws IOException {
    Path log = new Path(table, "_delta_log");
    FileSystem fs = log.getFileSystem(conf);
    FileStatus[] files;
    try {
      files = fs.listStatus(log);
    } catch (FileNotFoundException e) {
      return -1;
    }
    long latest = -1;
    for (FileStatus file : files) {
      Matcher m = COMMIT.matcher(file.getPath().getName());
      if (m.matches()) {
        latest = Math.max(latest, Long.parseLong(m.group(1)));
      }
    }
    return latest;
  }

  /** The text of commit `version`'s file. */
  public static String commit(Configuration conf, String table, long version) throws IOException {
    Path file = commitPath(table, version);
    try (InputStream in = file.getFileSystem(conf).open(file)) {
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
  }

  /** When commit `version` was written: its file's modification time, in epoch milliseconds. */
  public static long commitTime(Configuration conf, String table, long version) throws IOException {
    Path file = commitPath(table, version);
    return file.getFileSystem(conf).getFileStatus(file).getModificationTime();
  }

  private static Path commitPath(String table, long version) {
    return new Path(new Path(table, "_delta_log"), String.format("%020d.json", version));
  }
}
