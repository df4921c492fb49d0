package moetune.engine.backend;

import java.lang.reflect.InvocationHandler;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Where a step's device time goes, by phase: a {@link Backend} that forwards every call to another
 * one and, while {@link #begin} is in force, stamps the backend's queue ({@link QueueClock}) before
 * and after each op. The time between an op's two stamps is that op's; the time between one op's
 * end and the next one's start is the device waiting for the host (Java orchestration, launch
 * overhead, and the host catching up after a synchronising download). Only the model's own calls
 * are seen: an op that calls others inside the backend counts as one.
 *
 * <p>Ops fall into phases by their Backend method name (so kernels that other code adds later land
 * in the right phase as long as their names say what they are). Outside {@link #begin} / {@link
 * #end} the wrapper only forwards (one reflective call per op, a few hundred nanoseconds).
 */
public final class OpProfiler {

  /** What an op's time counts as. */
  public enum Phase {
    ATTENTION("attention kernels"),
    MOE("MoE: routing, grouped products, SwiGLU, router losses"),
    GEMM("dense GEMMs (q/k/v/o, router, LM head with its cross-entropy)"),
    OTHER("other kernels (norms, RoPE, embedding, cross-entropy, copies, fills)"),
    OPTIMIZER("optimizer (grad norm, clip, AdamW)"),
    TRANSFER("host<->device copies"),
    IDLE("device idle: waiting for the host (launches, syncs)");

    public final String label;

    Phase(String label) {
      this.label = label;
    }
  }

  /**
   * One profiled stretch of work.
   *
   * @param totalMs from {@link #begin} to {@link #end} on the device's clock
   * @param byPhase milliseconds per phase (they add up to totalMs)
   * @param byOp milliseconds per Backend method, largest first
   * @param ops ops seen
   * @param syncs ops that made the host wait for the device (download, synchronize)
   * @param idleAfterSyncsMs the part of the idle time that directly follows a sync
   * @param sequence every op in the order it was queued
   */
  public record Breakdown(
      double totalMs,
      Map<Phase, Double> byPhase,
      Map<String, Double> byOp,
      int ops,
      int syncs,
      double idleAfterSyncsMs,
      List<Op> sequence) {}

  /**
   * One op of a profiled stretch: its Backend method name, its time on the device and the device's
   * idle time just before it (waiting for the host to queue it).
   */
  public record Op(String name, double ms, double idleBeforeMs) {}

  // Methods that queue no device work: not stamped.
  private static final Set<String> UNTIMED =
      Set.of(
          "name",
          "describe",
          "supports",
          "empty",
          "bytesInUse",
          "peakBytes",
          "resetPeak",
          "swigluSavesFactors",
          "dwBesideDx",
          "close",
          "newQueueClock",
          "reportTensorsAs",
          "toString",
          "hashCode",
          "equals");
  private static final Set<String> MOE_OPS =
      Set.of(
          "routerTopK",
          "routerBackward",
          "flattenSortCount",
          "scatter2scatter",
          "scatter2scatterSwiglu",
          "scatter2scatterSwigluBackward",
          "scatter2scatterSwigluFactors",
          "scatter2scatterSwigluFactorsBackward",
          "gateRowsBackward",
          "group",
          "groupXtY",
          "combine",
          "combineGatesBackward",
          "groupGatesBackward",
          "swigluFactorsBackwardBesideDw",
          "scatter2scatterBesideDw",
          "runDwBesideDx",
          "swigluForward",
          "swigluBackward",
          "swigluFactors",
          "swigluBackwardFactors",
          "loadBalancingLoss",
          "routerZLoss");
  private static final Set<String> SYNCS = Set.of("download", "synchronize");

  private final Backend target;
  private final QueueClock clock;
  private final Backend proxy;
  private final List<String> opNames = new ArrayList<>();
  private boolean active;

  private OpProfiler(Backend target) {
    this.target = target;
    this.clock = target.newQueueClock();
    InvocationHandler h = this::invoke;
    this.proxy =
        (Backend)
            Proxy.newProxyInstance(
                Backend.class.getClassLoader(), new Class<?>[] {Backend.class}, h);
  }

  /**
   * A profiler over target; build the model on {@link #backend()}. Target's tensors report the
   * wrapper as their backend until {@link #close}, so ops reached through a tensor are seen too.
   */
  public static OpProfiler wrap(Backend target) {
    OpProfiler p = new OpProfiler(target);
    target.reportTensorsAs(p.proxy);
    return p;
  }

  /** The backend to hand the model: forwards to the target. */
  public Backend backend() {
    return proxy;
  }

  /** The phase an op of this Backend method name counts as. */
  public static Phase phaseOf(String method) {
    String m = method.toLowerCase(java.util.Locale.ROOT);
    if (m.contains("attention")) {
      return Phase.ATTENTION;
    }
    if (MOE_OPS.contains(method) || m.contains("moe") || m.contains("expert")) {
      return Phase.MOE;
    }
    if (m.startsWith("matmul") || m.startsWith("gemm") || m.startsWith("lmhead")) {
      return Phase.GEMM;
    }
    if (m.startsWith("adamw") || m.startsWith("clip") || m.equals("sumsquares")) {
      return Phase.OPTIMIZER;
    }
    if (m.equals("upload")
        || m.equals("copyfromhost")
        || m.equals("download")
        || m.equals("synchronize")) {
      return Phase.TRANSFER;
    }
    return Phase.OTHER;
  }

  /** Starts stamping every op. */
  public void begin() {
    clock.reset();
    opNames.clear();
    active = true;
    clock.stamp();
  }

  /** Stops stamping, waits for the device and sums the time by phase. */
  public Breakdown end() {
    clock.stamp();
    active = false;
    double[] t = clock.read();
    Map<Phase, Double> phase = new EnumMap<>(Phase.class);
    for (Phase p : Phase.values()) {
      phase.put(p, 0.0);
    }
    Map<String, Double> op = new LinkedHashMap<>();
    List<Op> sequence = new ArrayList<>(opNames.size());
    int syncs = 0;
    double afterSyncs = 0;
    boolean lastWasSync = false;
    for (int k = 0; k < opNames.size(); k++) {
      double gap = t[1 + 2 * k] - t[2 * k];
      double busy = t[2 + 2 * k] - t[1 + 2 * k];
      String name = opNames.get(k);
      phase.merge(Phase.IDLE, gap, Double::sum);
      if (lastWasSync) {
        afterSyncs += gap;
      }
      phase.merge(phaseOf(name), busy, Double::sum);
      op.merge(name, busy, Double::sum);
      sequence.add(new Op(name, busy, gap));
      lastWasSync = SYNCS.contains(name);
      syncs += lastWasSync ? 1 : 0;
    }
    int last = t.length - 1;
    double tail = t[last] - t[last - 1];
    phase.merge(Phase.IDLE, tail, Double::sum);
    if (lastWasSync) {
      afterSyncs += tail;
    }
    Map<String, Double> sorted = new LinkedHashMap<>();
    op.entrySet().stream()
        .sorted(Map.Entry.<String, Double>comparingByValue().reversed())
        .forEach(e -> sorted.put(e.getKey(), e.getValue()));
    return new Breakdown(
        t[last], phase, sorted, opNames.size(), syncs, afterSyncs, List.copyOf(sequence));
  }

  /** Releases the clock's events and unwraps the target's tensors. */
  public void close() {
    clock.close();
    target.reportTensorsAs(null);
  }

  private Object invoke(Object self, Method method, Object[] args) throws Throwable {
    String name = method.getName();
    boolean timed = active && !UNTIMED.contains(name);
    if (timed) {
      clock.stamp();
      opNames.add(name);
    }
    try {
      return method.invoke(target, args);
    } catch (InvocationTargetException e) {
      throw e.getCause();
    } finally {
      if (timed) {
        clock.stamp();
      }
    }
  }
}
