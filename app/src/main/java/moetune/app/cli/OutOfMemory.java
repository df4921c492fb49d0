package moetune.app.cli;

import java.io.PrintStream;
import java.util.Locale;
import moetune.engine.backend.cuda.CudaException;

/**
 * Out-of-memory on the host (Java heap) or the GPU ends the process with one line that says what to
 * lower or raise, and a non-zero exit; never a hang.
 *
 * <p>Why the process ends instead of reporting and carrying on: an {@link OutOfMemoryError} can
 * strike any thread, and a thread of the CPU backend's pool that dies of it leaves the step it was
 * part of waiting forever. So {@link #install} makes every thread's death by OOM halt the JVM
 * (halt, not exit: exit would run the Ctrl-C hook, which waits for a step boundary that will never
 * come). Nothing is lost by it: checkpoints and the other files are written atomically, so the
 * latest checkpoint on disk is complete.
 */
public final class OutOfMemory {
  /** The exit code of a process ended by running out of memory. */
  public static final int EXIT_CODE = 3;

  /** CUresult CUDA_ERROR_OUT_OF_MEMORY. */
  private static final int CUDA_OOM = 2;

  private static final int RESERVE_BYTES = 4 << 20;

  // Made at install time: when the handler runs, the heap is full and a new string may not fit.
  private static volatile String hostLine;

  // Freed when the handler runs, so that printing the line has room.
  @SuppressWarnings("unused")
  private static volatile byte[] reserve;

  private OutOfMemory() {}

  /** Makes an OOM in any thread print {@link #hostAdvice} and halt with {@link #EXIT_CODE}. */
  public static void install() {
    hostLine = hostAdvice();
    reserve = new byte[RESERVE_BYTES];
    Thread.UncaughtExceptionHandler previous = Thread.getDefaultUncaughtExceptionHandler();
    Thread.setDefaultUncaughtExceptionHandler(
        (thread, e) -> {
          if (isOutOfMemory(e)) {
            halt(System.err);
          } else if (previous != null) {
            previous.uncaughtException(thread, e);
          } else {
            System.err.print("Exception in thread \"" + thread.getName() + "\" ");
            e.printStackTrace(System.err);
          }
        });
  }

  /** Prints the host advice and halts the JVM; for OOMs where unwinding is not safe. */
  public static void halt(PrintStream err) {
    reserve = null;
    try {
      String line = hostLine;
      err.println(line != null ? line : hostAdvice());
      err.flush();
      System.out.flush();
    } finally {
      Runtime.getRuntime().halt(EXIT_CODE);
    }
  }

  /** Whether e or one of its causes is a Java OutOfMemoryError. */
  public static boolean isOutOfMemory(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof OutOfMemoryError) {
        return true;
      }
    }
    return false;
  }

  /** Whether e or one of its causes is a CUDA out-of-memory error. */
  public static boolean isGpuOutOfMemory(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof CudaException c && c.code() == CUDA_OOM) {
        return true;
      }
    }
    return false;
  }

  /** The line for a Java heap OOM. */
  public static String hostAdvice() {
    long maxMiB = Runtime.getRuntime().maxMemory() >> 20;
    return String.format(
        Locale.ROOT,
        "moetune: out of memory on the host (Java heap max %d MiB): lower --micro-batch or"
            + " --max-length (or use activation recomputation where the model offers it), or give"
            + " Java more heap, e.g. MOETUNE_JAVA_OPTS=-Xmx%dg ./moetune ...; files on disk are"
            + " intact (resume from the latest checkpoint)",
        maxMiB,
        Math.max(2, 2 * ((maxMiB + 1023) >> 10)));
  }

  /** The line for a GPU OOM (the driver's message in brackets). */
  public static String gpuAdvice(Throwable e) {
    return "moetune: out of GPU memory ("
        + e.getMessage()
        + "): lower --micro-batch or --max-length (or use activation recomputation where the model"
        + " offers it), or free GPU memory (other processes on the GPU: nvidia-smi); files on disk"
        + " are intact (resume from the latest checkpoint)";
  }
}
