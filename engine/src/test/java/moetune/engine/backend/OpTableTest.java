package moetune.engine.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.testing.TestSeeds;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The op table on the CPU: every Backend method has a case (or a stated reason not to), and every
 * case gives bit-identical outputs on one thread and on several (the oracle's determinism, which
 * the GPU twin {@code OpTableGpuTest} relies on), with every poisoned output written. The GPU
 * variant runs the same cases against this oracle.
 */
class OpTableTest {
  private static final long SEED = TestSeeds.seed("OpTableTest", 42);
  private static CpuBackend one;
  private static CpuBackend many;

  @BeforeAll
  static void open() {
    one = new CpuBackend(1);
    many = new CpuBackend(4);
  }

  @AfterAll
  static void close() {
    one.close();
    many.close();
  }

  static List<String> ops() {
    return List.copyOf(OpTable.CASES.keySet());
  }

  @Test
  void everyBackendMethodHasACase() {
    assertEquals(List.of(), OpTable.missing());
  }

  /** A made-up backend with one op more than the table knows. */
  interface Grown {
    void add();

    void name();

    void newOp();
  }

  @Test
  void aMethodWithoutACaseIsReported() {
    assertEquals(
        List.of(
            "newOp: no case in OpTable.CASES (add one, or a reason to NOT_OPS)",
            "gone: a case for a method Backend no longer has"),
        OpTable.missing(Grown.class, Set.of("add", "gone"), Set.of("name")));
  }

  @ParameterizedTest
  @MethodSource("ops")
  void oneThreadAndFourAgreeBitwise(String op) {
    Map<String, float[]> expected = OpTable.run(op, one, SEED);
    Map<String, float[]> actual = OpTable.run(op, many, SEED);
    List<String> fails = new ArrayList<>(OpTable.unwritten(op, expected));
    fails.addAll(OpTable.compare(op, expected, actual, 0));
    assertEquals(List.of(), fails, "seed " + SEED);
  }
}
