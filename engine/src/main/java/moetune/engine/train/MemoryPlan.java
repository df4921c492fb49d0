package moetune.engine.train;

import moetune.engine.model.Parameters;
import moetune.engine.tensor.DType;

/**
 * Where a training run's device memory goes: the float32 master weights, the low-precision working
 * copy the forward and backward compute with (none in float32 mode), the float32 gradients, AdamW's
 * two float32 moments, and what is left of the peak for activations and scratch. Every static part
 * is a single flat buffer (see {@link Parameters}), so these numbers are exact; the activation part
 * is known only once a step has run.
 *
 * @param parameters P
 * @param masterBytes F32 master weights (4P)
 * @param workingCopyBytes the working copy (2P in bf16, 0 in float32 mode)
 * @param gradBytes F32 gradients (4P)
 * @param optimizerBytes AdamW's first and second moments, F32 (8P)
 * @param peakBytes the allocator's peak over a step, or -1 before one has run
 */
public record MemoryPlan(
    long parameters,
    long masterBytes,
    long workingCopyBytes,
    long gradBytes,
    long optimizerBytes,
    long peakBytes) {

  /** The static parts for a model's parameters trained by AdamW; the peak is not known yet. */
  public static MemoryPlan of(Parameters p) {
    long n = p.count();
    long work = p.hasWorkingCopy() ? n * p.workFlat().dtype().bytes() : 0;
    return new MemoryPlan(n, n * 4, work, n * 4, n * 2 * DType.F32.bytes(), -1);
  }

  /** This plan with a measured peak (the allocator's, over a whole step). */
  public MemoryPlan withPeak(long peak) {
    return new MemoryPlan(
        parameters, masterBytes, workingCopyBytes, gradBytes, optimizerBytes, peak);
  }

  /** Bytes held for the whole run. */
  public long staticBytes() {
    return masterBytes + workingCopyBytes + gradBytes + optimizerBytes;
  }

  /** The peak less the static parts (activations, their gradients, scratch), or -1. */
  public long activationBytes() {
    return peakBytes < 0 ? -1 : peakBytes - staticBytes();
  }

  /** One line for the run's log. */
  public String describe() {
    StringBuilder s = new StringBuilder();
    s.append(
        String.format(
            "memory plan: %,d parameters: master weights %s (fp32)", parameters, gib(masterBytes)));
    if (workingCopyBytes > 0) {
      s.append(" + working copy ").append(gib(workingCopyBytes));
    }
    s.append(", gradients ")
        .append(gib(gradBytes))
        .append(" (fp32), AdamW moments ")
        .append(gib(optimizerBytes))
        .append(" (fp32); static ")
        .append(gib(staticBytes()));
    if (peakBytes >= 0) {
      s.append(", activations and scratch at the peak ")
          .append(gib(activationBytes()))
          .append(", peak ")
          .append(gib(peakBytes));
    } else {
      s.append(", plus activations (measured once a step has run)");
    }
    return s.toString();
  }

  static String gib(long bytes) {
    return String.format("%.2f GiB", bytes / (double) (1L << 30));
  }
}
