package moetune.engine.backend.cuda;

import java.util.ArrayList;
import java.util.List;
import moetune.engine.moe.MoeLayerBenchmark;
import moetune.engine.moe.MoeLayerBenchmark.Shape;

/**
 * The MoE layer benchmark ({@link MoeLayerBenchmark}, what {@code moetune bench moe} runs) from the
 * staged test classes on a GPU host: {@code BENCH=1 scripts/device/run-gpu-tests.sh}, with {@code
 * BENCH_ARGS="T D F E K ..."} for other shapes than the three defaults; {@code
 * MOE_BENCH_BREAKDOWN=1} adds each shape's per-op breakdown (what {@code --breakdown} prints),
 * {@code written} the breakdown with dW written (a step's first micro-batch), {@code both} both;
 * {@code MOE_BENCH_KERNELS=auto,h,...} the kernel families and {@code
 * MOE_BENCH_SETTINGS=base,stagger=2:1,groupgates=fused+beside=52/66,...} the lab settings, each
 * family with each: {@code base} the environment's, else {@code +}-joined {@code stagger=} (variant
 * 59's start groups, MOETUNE_MOE_STAGGER's values), {@code groupgates=} (variant 60, fused or
 * split), {@code beside=} (variant 61: SMS or SWIGLU/PLAIN, with :v14 or not, or off) and {@code
 * pingpong=} (variants 62-66: v62, v63, v65, v64, v66, v63/v64, ... or off), the others as in base.
 */
public final class MoeLayerBench {
  public static void main(String[] args) {
    List<Shape> shapes = new ArrayList<>();
    for (int i = 0; i + 4 < args.length; i += 5) {
      shapes.add(
          new Shape(
              Integer.parseInt(args[i]),
              Integer.parseInt(args[i + 1]),
              Integer.parseInt(args[i + 2]),
              Integer.parseInt(args[i + 3]),
              Integer.parseInt(args[i + 4])));
    }
    if (shapes.isEmpty()) shapes = MoeLayerBenchmark.DEFAULT_SHAPES;
    try (CudaBackend g = new CudaBackend(0, false)) {
      System.out.println("MoE layer bench on " + g.describe());
      // on Hopper both kernel families in the same run: variant 2 everywhere, then the default
      // (MOE_BENCH_V2=0: the default alone)
      // (MOE_BENCH_KERNELS=auto,ws256,...: those families, in that order)
      CudaScatterMoe.Kernel chosen = g.moe().kernel();
      List<CudaScatterMoe.Kernel> kernels =
          listed(
              "MOE_BENCH_KERNELS",
              CudaScatterMoe.Kernel::fromEnv,
              g.moe().hopper()
                      && chosen != CudaScatterMoe.Kernel.V2
                      && !"0".equals(System.getenv("MOE_BENCH_V2"))
                  ? List.of(CudaScatterMoe.Kernel.V2, chosen)
                  : List.of(chosen));
      // MOE_BENCH_SETTINGS=base,stagger=2:1,...: each family with each of the lab settings
      Setting base = Setting.of(g.moe());
      List<Setting> settings =
          listed("MOE_BENCH_SETTINGS", v -> Setting.parse(v, base), List.of(base));
      for (CudaScatterMoe.Kernel k : kernels) {
        for (Setting st : settings) {
          st.apply(g.moe());
          run(g, k, shapes, settings.size() > 1 ? st.tag() : "");
        }
      }
      g.moe().kernel(chosen);
      base.apply(g.moe());
    }
  }

  /**
   * The MoE backend's lab settings for one run: variant 59's start groups, variant 60's gates'
   * gradient in the group's pass, variant 61's weight gradients beside their dX, variants 62-66's
   * SwiGLU products on ping-pong warpgroups.
   */
  record Setting(
      CudaScatterMoe.Stagger stagger,
      boolean groupGatesFused,
      CudaScatterMoe.Beside beside,
      CudaScatterMoe.PingPong pingPong) {
    static Setting of(CudaScatterMoe moe) {
      return new Setting(moe.stagger(), moe.groupGatesFused(), moe.beside(), moe.pingPong());
    }

    /** base, or +-joined stagger=, groupgates=, beside=, pingpong= over base. */
    static Setting parse(String spec, Setting base) {
      Setting s = base;
      if (spec.strip().equals("base")) {
        return s;
      }
      for (String kv : spec.split("\\+")) {
        String[] f = kv.strip().split("=", 2);
        String v = f.length == 2 ? f[1] : "";
        s =
            switch (f[0].strip()) {
              case "stagger" ->
                  new Setting(
                      CudaScatterMoe.Stagger.fromEnv(v), s.groupGatesFused, s.beside, s.pingPong);
              case "groupgates" ->
                  new Setting(s.stagger, CudaScatterMoe.groupGatesFromEnv(v), s.beside, s.pingPong);
              case "beside" ->
                  new Setting(
                      s.stagger, s.groupGatesFused, CudaScatterMoe.Beside.fromEnv(v), s.pingPong);
              case "pingpong" ->
                  new Setting(
                      s.stagger, s.groupGatesFused, s.beside, CudaScatterMoe.PingPong.fromEnv(v));
              default ->
                  throw new IllegalArgumentException(
                      "MOE_BENCH_SETTINGS: "
                          + kv
                          + " is not stagger=, groupgates=, beside= or pingpong= (entries: base,"
                          + " or those joined by +)");
            };
      }
      return s;
    }

    void apply(CudaScatterMoe moe) {
      moe.stagger(stagger);
      moe.groupGatesFused(groupGatesFused);
      moe.beside(beside);
      moe.pingPong(pingPong);
    }

    String tag() {
      return " MOETUNE_MOE_STAGGER="
          + stagger
          + " MOETUNE_MOE_GROUP_GATES="
          + (groupGatesFused ? "fused" : "split")
          + " MOETUNE_MOE_BESIDE="
          + beside
          + " MOETUNE_MOE_PINGPONG="
          + pingPong;
    }
  }

  /** The comma-separated values of environment variable name, or otherwise where it is unset. */
  private static <T> List<T> listed(
      String name, java.util.function.Function<String, T> parse, List<T> otherwise) {
    String v = System.getenv(name);
    return v == null || v.isBlank()
        ? otherwise
        : java.util.Arrays.stream(v.split(",")).map(parse).toList();
  }

  /** One family (and lab settings) over the shapes: the table, then each shape's breakdown. */
  private static void run(CudaBackend g, CudaScatterMoe.Kernel k, List<Shape> shapes, String tag) {
    g.moe().kernel(k);
    System.out.println("MOETUNE_MOE_KERNEL=" + k.name().toLowerCase(java.util.Locale.ROOT) + tag);
    System.out.println(MoeLayerBenchmark.header(false, ""));
    List<String> breakdowns = new ArrayList<>();
    // 1: dW added (+=); written: dW written (=, a step's first micro-batch); both: both
    String bd = System.getenv("MOE_BENCH_BREAKDOWN");
    for (Shape s : shapes) {
      MoeLayerBenchmark.Result r = MoeLayerBenchmark.run(g, s, 7, 5);
      System.out.println(MoeLayerBenchmark.row(r, false, 0));
      for (boolean written : new boolean[] {false, true}) {
        if ("both".equals(bd) || (written ? "written" : "1").equals(bd)) {
          breakdowns.add(
              MoeLayerBenchmark.breakdownTable(
                  MoeLayerBenchmark.breakdown(g, s, 5, written), r.denseForwardBackward()));
        }
      }
    }
    breakdowns.forEach(System.out::println);
  }
}
