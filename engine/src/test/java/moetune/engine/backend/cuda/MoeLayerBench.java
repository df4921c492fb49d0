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
      CudaScatterMoe.Lab base = g.moe().lab();
      List<CudaScatterMoe.Lab> settings = listed("MOE_BENCH_SETTINGS", base::with, List.of(base));
      for (CudaScatterMoe.Kernel k : kernels) {
        for (CudaScatterMoe.Lab st : settings) {
          g.moe().lab(st);
          run(g, k, shapes, settings.size() > 1 ? " " + st : "");
        }
      }
      g.moe().kernel(chosen);
      g.moe().lab(base);
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
