package moetune.app.run;

import java.io.BufferedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.zip.CRC32C;
import moetune.engine.train.EvalMetrics;
import moetune.engine.train.ExpertLoad;
import moetune.engine.train.StepMetrics;
import moetune.engine.train.TrainingListener;

/**
 * {@code --report-to tensorboard}: the run's metrics as a TensorBoard event file in the output
 * directory, beside metrics.jsonl, so {@code tensorboard --logdir runs/} shows every run under
 * runs/ by its folder name, and {@code wandb sync --sync-tensorboard OUT} uploads it to W&B.
 *
 * <p>The file is what TensorFlow's summary writer makes, written here without TensorFlow (the
 * format is small and stable): a sequence of TFRecords, each {@code uint64 length, uint32
 * masked_crc32c(length), data, uint32 masked_crc32c(data)} (little endian; the mask is {@code ((crc
 * >>> 15 | crc << 17) + 0xa282ead8)}), whose data is an {@code Event} protocol buffer: {@code
 * wall_time} (1, double), {@code step} (2, int64), and either {@code file_version} (3, string:
 * "brain.Event:2", the first record) or {@code summary} (5) holding {@code Summary.Value}s of
 * {@code tag} (1, string) and {@code simple_value} (2, float): TensorBoard's scalars.
 *
 * <p>Each record is flushed as written, so a live TensorBoard follows the run. A resumed run starts
 * a new event file (TensorBoard reads every file of the folder); the steps redone after a stop
 * appear twice there, as in any TensorBoard log of a resumed run.
 */
public final class TensorBoardLog implements TrainingListener, AutoCloseable {
  /** The prefix TensorBoard looks for in file names. */
  public static final String PREFIX = "events.out.tfevents.";

  private final Path file;
  private final OutputStream out;
  private IOException failure; // the first write error: the run goes on, close() reports it

  private TensorBoardLog(Path file, OutputStream out) {
    this.file = file;
    this.out = out;
  }

  /** Starts a new event file in {@code dir}, named as TensorFlow names them. */
  public static TensorBoardLog create(Path dir) throws IOException {
    Files.createDirectories(dir);
    long now = System.currentTimeMillis();
    String host;
    try {
      host = java.net.InetAddress.getLocalHost().getHostName();
    } catch (IOException e) {
      host = "localhost";
    }
    Path file =
        dir.resolve(
            String.format(
                Locale.ROOT,
                "%s%010d.%s.%d.moetune",
                PREFIX,
                now / 1000,
                host,
                ProcessHandle.current().pid()));
    OutputStream out =
        new BufferedOutputStream(
            Files.newOutputStream(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE));
    TensorBoardLog log = new TensorBoardLog(file, out);
    log.write(fileVersionEvent(now / 1000.0));
    return log;
  }

  public Path file() {
    return file;
  }

  @Override
  public void onStep(StepMetrics m) {
    Map<String, Float> v = new LinkedHashMap<>();
    v.put("train/loss", (float) m.loss());
    v.put("train/lr", (float) m.lr());
    v.put("train/grad_norm", (float) m.gradNorm());
    v.put("train/tokens_per_s", (float) m.tokensPerSecond());
    v.put("train/aux_loss", (float) m.auxLoss());
    if (m.zLoss() != 0) {
      v.put("train/z_loss", (float) m.zLoss());
    }
    v.put("train/epoch", (float) m.epoch());
    scalars(m.step(), v);
  }

  @Override
  public void onEval(EvalMetrics m) {
    Map<String, Float> v = new LinkedHashMap<>();
    v.put("eval/loss", (float) m.loss());
    v.put("eval/perplexity", (float) m.perplexity());
    scalars(m.step(), v);
  }

  /** Per layer: each expert's share of the routed tokens and the router's entropy. */
  @Override
  public void onExpertLoad(ExpertLoad load) {
    Map<String, Float> v = new LinkedHashMap<>();
    for (int l = 0; l < load.share().length; l++) {
      for (int e = 0; e < load.share()[l].length; e++) {
        v.put("expert_load/layer_" + l + "/expert_" + e, (float) load.share()[l][e]);
      }
      v.put("router_entropy/layer_" + l, (float) load.entropy()[l]);
    }
    scalars(load.step(), v);
  }

  private void scalars(long step, Map<String, Float> values) {
    if (failure != null) {
      return;
    }
    try {
      write(scalarEvent(System.currentTimeMillis() / 1000.0, step, values));
    } catch (IOException e) {
      failure = e; // a listener must not throw into the training loop
    }
  }

  private synchronized void write(byte[] event) throws IOException {
    out.write(record(event));
    out.flush();
  }

  @Override
  public synchronized void close() throws IOException {
    out.close();
    if (failure != null) {
      throw new IOException("cannot write " + file + ": " + failure.getMessage(), failure);
    }
  }

  // ---- the format, package-private for the test that reads it back

  /** One TFRecord around {@code data}. */
  static byte[] record(byte[] data) {
    ByteBuffer b = ByteBuffer.allocate(8 + 4 + data.length + 4).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(data.length);
    b.putInt(maskedCrc(b.array(), 0, 8));
    b.put(data);
    b.putInt(maskedCrc(data, 0, data.length));
    return b.array();
  }

  /** TFRecord's masked CRC-32C (Castagnoli). */
  static int maskedCrc(byte[] a, int off, int len) {
    CRC32C c = new CRC32C();
    c.update(a, off, len);
    int crc = (int) c.getValue();
    return ((crc >>> 15) | (crc << 17)) + 0xa282ead8;
  }

  static byte[] fileVersionEvent(double wallTime) {
    Proto p = new Proto();
    p.fixed64(1, Double.doubleToRawLongBits(wallTime));
    p.bytes(3, "brain.Event:2".getBytes(StandardCharsets.UTF_8));
    return p.toBytes();
  }

  static byte[] scalarEvent(double wallTime, long step, Map<String, Float> values) {
    Proto summary = new Proto();
    for (Map.Entry<String, Float> e : values.entrySet()) {
      Proto value = new Proto();
      value.bytes(1, e.getKey().getBytes(StandardCharsets.UTF_8));
      value.fixed32(2, Float.floatToRawIntBits(e.getValue()));
      summary.bytes(1, value.toBytes());
    }
    Proto event = new Proto();
    event.fixed64(1, Double.doubleToRawLongBits(wallTime));
    event.varint(2, step);
    event.bytes(5, summary.toBytes());
    return event.toBytes();
  }

  /** The protocol-buffer wire format, the four field kinds an Event needs. */
  static final class Proto {
    private final ByteArrayOutputStream b = new ByteArrayOutputStream();

    void varint(int field, long v) {
      rawVarint((long) field << 3);
      rawVarint(v);
    }

    void fixed64(int field, long v) {
      rawVarint((long) field << 3 | 1);
      for (int i = 0; i < 8; i++) {
        b.write((int) (v >>> (8 * i)));
      }
    }

    void fixed32(int field, int v) {
      rawVarint((long) field << 3 | 5);
      for (int i = 0; i < 4; i++) {
        b.write(v >>> (8 * i));
      }
    }

    void bytes(int field, byte[] v) {
      rawVarint((long) field << 3 | 2);
      rawVarint(v.length);
      b.writeBytes(v);
    }

    private void rawVarint(long v) {
      while ((v & ~0x7FL) != 0) {
        b.write((int) ((v & 0x7F) | 0x80));
        v >>>= 7;
      }
      b.write((int) v);
    }

    byte[] toBytes() {
      return b.toByteArray();
    }
  }
}
