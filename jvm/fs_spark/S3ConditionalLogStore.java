package fs_spark;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.util.Iterator;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import io.delta.storage.HadoopFileSystemLogStore;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.s3a.S3AFileSystem;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.PutObjectRequest;
import software.amazon.awssdk.services.s3.model.S3Exception;

/**
 * Delta's log on S3 for writers on many hosts, through S3's conditional writes.
 *
 * <p>Delta needs mutual exclusion on each commit file: of two writers racing for version N, one
 * creates {@code _delta_log/N.json} and the other must fail with
 * {@link FileAlreadyExistsException}, which Delta turns into a conflict check and a retry at
 * N+1. S3 gives exactly that since 2024: a PUT with {@code If-None-Match: *} fails with 412 when
 * the object exists. Delta's own S3 log store checks existence first and then writes, which is
 * safe within one driver only; its DynamoDB log store needs a table beside the bucket and the
 * AWS SDK v1. delta-rs commits to S3 the same way as this class, so both can write one table.
 *
 * <p>Reads and listings are Hadoop's (S3 lists consistently after a write). Overwrites
 * ({@code _last_checkpoint}) are plain writes. Configure with
 * {@code spark.delta.logStore.s3a.impl=fs_spark.S3ConditionalLogStore}.
 *
 * <p>Fencing: a writer that numbers its feature version under a lease names, before its write,
 * the Delta version its commit should take ({@link #expectNextCommit}): the version after the
 * last one it saw under the lease. A later version is allowed only when every commit since the
 * expected one changed no data (a VACUUM's, an OPTIMIZE's, a property change); otherwise, or for
 * an earlier version, the commit is refused with an {@link IOException} carrying
 * {@link #FENCED}, which Delta does not retry. So a writer stalled past its lease, whose lock
 * another writer took over and wrote under, cannot commit: its version is taken (412), and
 * Delta's retry at a later version is refused here.
 */
public class S3ConditionalLogStore extends HadoopFileSystemLogStore {
  /** S3 answers 409 while another conditional write of the same key is in flight: retry. */
  private static final int IN_FLIGHT_RETRIES = 10;

  /** The marker of a commit refused by the fence, for the writer to recognise. */
  public static final String FENCED = "FS_SPARK_FENCED";

  private static final Pattern COMMIT = Pattern.compile("(\\d{20})\\.json");
  private static final Map<String, Long> EXPECTED = new ConcurrentHashMap<>();

  /** The only Delta version the next commit to the table at {@code tablePath} may take. */
  public static void expectNextCommit(String tablePath, long version) {
    EXPECTED.put(logFolder(new Path(tablePath, "_delta_log")), version);
  }

  /** Lift the expectation of the table at {@code tablePath} (its write is over). */
  public static void clearExpectation(String tablePath) {
    EXPECTED.remove(logFolder(new Path(tablePath, "_delta_log")));
  }

  private static String logFolder(Path folder) {
    return folder.toUri().getAuthority() + folder.toUri().getPath().replaceAll("/+$", "");
  }

  public S3ConditionalLogStore(Configuration hadoopConf) {
    super(hadoopConf);
  }

  @Override
  public void write(Path path, Iterator<String> actions, Boolean overwrite, Configuration hadoopConf)
      throws IOException {
    byte[] body = joined(actions);
    FileSystem fs = path.getFileSystem(hadoopConf);
    if (overwrite) {
      try (FSDataOutputStream out = fs.create(path, true)) {
        out.write(body);
      }
      return;
    }
    if (!(fs instanceof S3AFileSystem)) {
      throw new IOException(getClass().getSimpleName() + " writes only to S3A paths, not " + path);
    }
    checkFence(fs, path);
    createOnce((S3AFileSystem) fs, path, body);
  }

  private static void createOnce(S3AFileSystem fs, Path path, byte[] body) throws IOException {
    S3Client client = fs.getS3AInternals().getAmazonS3Client("Delta commit");
    PutObjectRequest request =
        PutObjectRequest.builder().bucket(fs.getBucket()).key(fs.pathToKey(path)).ifNoneMatch("*").build();
    for (int attempt = 0; ; attempt++) {
      try {
        client.putObject(request, RequestBody.fromBytes(body));
        return;
      } catch (S3Exception e) {
        if (e.statusCode() == 412) {
          throw new FileAlreadyExistsException(path.toString());
        }
        if (e.statusCode() != 409 || attempt >= IN_FLIGHT_RETRIES) {
          throw new IOException("could not write the Delta commit " + path + ": " + e.getMessage(), e);
        }
      }
      try {
        Thread.sleep(50L << Math.min(attempt, 5));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new InterruptedIOException("interrupted writing " + path);
      }
    }
  }

  private static void checkFence(FileSystem fs, Path path) throws IOException {
    Matcher commit = COMMIT.matcher(path.getName());
    if (!commit.matches()) {
      return;
    }
    Long expected = EXPECTED.get(logFolder(path.getParent()));
    long version = Long.parseLong(commit.group(1));
    if (expected != null
        && expected != version
        && (version < expected || changedData(fs, path.getParent(), expected, version))) {
      throw new IOException(
          FENCED
              + ": this writer may commit only version "
              + expected
              + " of "
              + path.getParent().getParent()
              + ", not "
              + version
              + ": another writer committed since this one took the table's lock (its lease was lost)");
    }
  }

  /** Whether any commit in [from, to) of the log at {@code folder} added or removed data. */
  private static boolean changedData(FileSystem fs, Path folder, long from, long to) throws IOException {
    for (long v = from; v < to; v++) {
      Path entry = new Path(folder, String.format("%020d.json", v));
      try (java.io.BufferedReader lines =
          new java.io.BufferedReader(
              new java.io.InputStreamReader(fs.open(entry), StandardCharsets.UTF_8))) {
        for (String line = lines.readLine(); line != null; line = lines.readLine()) {
          boolean file = line.startsWith("{\"add\"") || line.startsWith("{\"remove\"");
          if (file && line.contains("\"dataChange\":true")) {
            return true;
          }
        }
      } catch (java.io.FileNotFoundException e) {
        return true; // a gap in the log: take it as a change
      }
    }
    return false;
  }

  private static byte[] joined(Iterator<String> actions) {
    StringBuilder text = new StringBuilder();
    while (actions.hasNext()) {
      text.append(actions.next()).append('\n');
    }
    return text.toString().getBytes(StandardCharsets.UTF_8);
  }

  @Override
  public Boolean isPartialWriteVisible(Path path, Configuration hadoopConf) {
    return false; // a PUT is all or nothing
  }
}
