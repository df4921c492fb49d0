package moetune.engine.train;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import moetune.engine.model.Batch;

/**
 * A stand-in {@link TrainableModel} for testing the loop itself: a bigram table of logits (V, V)
 * trained by cross-entropy with a plain-Java AdamW. Deterministic, so resume can be checked bit for
 * bit without the Mixtral model. It has no router (routing statistics are null).
 */
final class BigramModel implements TrainableModel {
  final int v;
  final float[] w; // (V, V) logits of next token given this token
  final float[] g;
  final float[] m;
  final float[] s;
  int adamStep;

  /**
   * forwardBackward calls (0-based, counted over the model's life) that return NaN: a test hook.
   */
  java.util.function.IntPredicate nanAtCall = c -> false;

  private int calls;

  BigramModel(int v, long seed) {
    this.v = v;
    w = new float[v * v];
    g = new float[v * v];
    m = new float[v * v];
    s = new float[v * v];
    long x = seed;
    for (int i = 0; i < w.length; i++) {
      x = DataOrder.mix(x + 0x9e3779b97f4a7c15L);
      w[i] = ((x >>> 40) / (float) (1 << 24) - 0.5f) * 0.1f;
    }
  }

  @Override
  public long trainableParameters() {
    return w.length;
  }

  @Override
  public String device() {
    return "test bigram";
  }

  @Override
  public void zeroGrad() {
    java.util.Arrays.fill(g, 0f);
  }

  @Override
  public MicroStep forwardBackward(Batch batch, double weight) {
    double lossSum = lossAndGrad(batch, (float) (weight / Math.max(1, batch.labelledTokens())));
    if (nanAtCall.test(calls++)) {
      lossSum = Double.NaN;
      g[0] = Float.NaN; // as a NaN activation would: the gradient is poisoned too
    }
    return new MicroStep(lossSum, batch.labelledTokens(), 0, 0, null);
  }

  @Override
  public double evalLossSum(Batch batch) {
    return lossAndGrad(batch, 0f);
  }

  private double lossAndGrad(Batch batch, float scale) {
    double sum = 0;
    float[] p = new float[v];
    int t = batch.seqLen();
    for (int n = 0; n < batch.inputIds().length; n++) {
      // HF's shift: position n predicts the next label of its row, none after the row's last
      int y = n % t + 1 < t ? batch.labels()[n + 1] : -100;
      if (y == -100) {
        continue;
      }
      int x = batch.inputIds()[n];
      float max = Float.NEGATIVE_INFINITY;
      for (int j = 0; j < v; j++) max = Math.max(max, w[x * v + j]);
      float z = 0;
      for (int j = 0; j < v; j++) {
        p[j] = (float) Math.exp(w[x * v + j] - max);
        z += p[j];
      }
      sum += Math.log(z) + max - w[x * v + y];
      if (scale != 0f) {
        for (int j = 0; j < v; j++) {
          g[x * v + j] += scale * (p[j] / z - (j == y ? 1f : 0f));
        }
      }
    }
    return sum;
  }

  @Override
  public double gradNorm() {
    double sq = 0;
    for (float x : g) sq += (double) x * x;
    return Math.sqrt(sq);
  }

  /** Clips to 1.0, then AdamW. */
  @Override
  public double step(double lr) {
    double norm = clipGradients(1.0);
    optimizerStep(lr);
    return norm;
  }

  private double clipGradients(double maxNorm) {
    double norm = gradNorm();
    if (maxNorm > 0 && norm > maxNorm) {
      float c = (float) (maxNorm / (norm + 1e-6));
      for (int i = 0; i < g.length; i++) g[i] *= c;
    }
    return norm;
  }

  private void optimizerStep(double lr) {
    adamStep++;
    float b1 = 0.9f;
    float b2 = 0.95f;
    float c1 = 1 - (float) Math.pow(b1, adamStep);
    float c2 = 1 - (float) Math.pow(b2, adamStep);
    for (int i = 0; i < w.length; i++) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      s[i] = b2 * s[i] + (1 - b2) * g[i] * g[i];
      w[i] -= (float) (lr / c1) * m[i] / ((float) Math.sqrt(s[i] / c2) + 1e-8f);
    }
  }

  @Override
  public void save(Path dir) throws IOException {
    try (DataOutputStream out =
        new DataOutputStream(Files.newOutputStream(dir.resolve("bigram.bin")))) {
      out.writeInt(adamStep);
      for (float[] a : new float[][] {w, m, s}) {
        for (float x : a) out.writeFloat(x);
      }
    }
  }

  @Override
  public void load(Path dir) throws IOException {
    try (DataInputStream in =
        new DataInputStream(Files.newInputStream(dir.resolve("bigram.bin")))) {
      adamStep = in.readInt();
      for (float[] a : new float[][] {w, m, s}) {
        for (int i = 0; i < a.length; i++) a[i] = in.readFloat();
      }
    }
  }

  @Override
  public void close() {}
}
