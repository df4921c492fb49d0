package moetune.engine.model;

import moetune.engine.backend.Backend;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.Tensor;

/**
 * Keys and values of the tokens decoded so far, per layer, for incremental decoding with {@link
 * MixtralModel#decode}. Every row of the batch holds the same number of tokens.
 *
 * <p>Per layer: K and V (B, C, Hkv, hd) with C the capacity; row b's first {@link #length()}
 * positions are filled. Keys are stored after RoPE, so they are never rotated again.
 */
public final class KvCache implements AutoCloseable {
  private final int batch;
  private final int capacity;
  private final Layer[] layers;
  private int length;

  KvCache(
      Backend be, int numLayers, int batch, int capacity, int kvHeads, int headDim, DType dtype) {
    if (batch <= 0 || capacity <= 0) {
      throw new IllegalArgumentException(
          "KvCache: batch " + batch + " and capacity " + capacity + " must be > 0");
    }
    this.batch = batch;
    this.capacity = capacity;
    this.layers = new Layer[numLayers];
    for (int l = 0; l < numLayers; l++) {
      layers[l] =
          new Layer(
              be.empty(dtype, batch, capacity, kvHeads, headDim),
              be.empty(dtype, batch, capacity, kvHeads, headDim));
    }
  }

  /** Tokens held per row. */
  public int length() {
    return length;
  }

  public int capacity() {
    return capacity;
  }

  public int batch() {
    return batch;
  }

  /** Forgets every token (the memory is kept for the next sequence). */
  public void reset() {
    length = 0;
  }

  Layer layer(int l) {
    return layers[l];
  }

  /** Checks that tq more tokens fit. */
  void checkRoom(int tq) {
    if (length + tq > capacity) {
      throw new IllegalArgumentException(
          "KvCache: "
              + length
              + " cached + "
              + tq
              + " new tokens exceed the capacity "
              + capacity
              + "; create a larger cache with MixtralModel.newKvCache");
    }
  }

  /** Called once per decode call after every layer appended tq tokens. */
  void advance(int tq) {
    length += tq;
  }

  /** One layer's K and V. */
  final class Layer {
    private final Tensor k; // (B, C, Hkv, hd)
    private final Tensor v; // (B, C, Hkv, hd)

    private Layer(Tensor k, Tensor v) {
      this.k = k;
      this.v = v;
    }

    int length() {
      return length;
    }

    /**
     * Writes src (Tq, Hkv, hd) after row b's cached keys (or values) and returns a view of the
     * row's first length + Tq positions, (length + Tq, Hkv, hd).
     */
    Tensor append(int b, boolean keys, Tensor src) {
      Tensor t = keys ? k : v;
      long perPos = t.dim(2) * t.dim(3);
      long rowStart = (long) b * capacity * perPos;
      long tq = src.dim(0);
      t.backend().copy(src, t.view(rowStart + length * perPos, tq, t.dim(2), t.dim(3)));
      return t.view(rowStart, length + tq, t.dim(2), t.dim(3));
    }

    private void close() {
      k.close();
      v.close();
    }
  }

  @Override
  public void close() {
    for (Layer l : layers) {
      l.close();
    }
  }
}
