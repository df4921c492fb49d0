package moetune.kernels;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;

/**
 * The compiled CUDA kernels: one fatbin (sm_80 and sm_90a machine code plus compute_90 PTX) that
 * nvcc built from {@code src/main/cuda} when this jar was built. A build without nvcc ships no
 * fatbin; {@link #isBuilt()} is then false and {@link #fatbin()} says so.
 */
public final class KernelImage {
  /** Where the fatbin lives on the class path. */
  public static final String RESOURCE = "/moetune/kernels/moetune.fatbin";

  private KernelImage() {}

  /** Whether the kernels were compiled into this jar. */
  public static boolean isBuilt() {
    return KernelImage.class.getResource(RESOURCE) != null;
  }

  /**
   * The fatbin's bytes, for cuModuleLoadData.
   *
   * @throws IllegalStateException if the kernels were not built
   */
  public static byte[] fatbin() {
    try (InputStream in = KernelImage.class.getResourceAsStream(RESOURCE)) {
      if (in == null) {
        throw new IllegalStateException(
            "the CUDA kernels were not built (no nvcc at build time): rebuild moetune on a machine"
                + " with the CUDA toolkit (nvcc on PATH or NVCC=/path/to/nvcc)");
      }
      return in.readAllBytes();
    } catch (IOException e) {
      throw new UncheckedIOException("reading " + RESOURCE + " from the kernels jar", e);
    }
  }
}
