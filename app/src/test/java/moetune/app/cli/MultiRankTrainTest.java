package moetune.app.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import moetune.app.config.ConfigException;
import moetune.app.run.RankGroup;
import moetune.engine.dist.LaunchEnv;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code moetune train --gpus N} with {@code --device cpu}: real worker processes joined by the TCP
 * process group, started, stopped by a signal and resumed by the launcher, compared with the
 * one-process run of the same global batch. Rank order sums make each world size deterministic;
 * across world sizes the gradient is summed in another order (each rank its micro-batches, then the
 * ranks), so losses agree to float32 rounding carried through the steps (1e-5 relative, as in
 * DataParallelTrainerTest), not bit for bit.
 */
class MultiRankTrainTest {
  static final int STEPS = 30;
  static final double REL_TOL = 1e-5;

  /** train --demo on the CPU with the test's flags; extra flag/value pairs replace or add. */
  static List<String> args(Path out, String... extra) {
    Map<String, String> flags = new java.util.LinkedHashMap<>();
    String[] base = {
      "--out",
      out.toString(),
      "--device",
      "cpu",
      "--max-steps",
      Integer.toString(STEPS),
      "--max-length",
      "128",
      "--micro-batch",
      "2",
      "--grad-accum",
      "2",
      "--eval-every",
      "10",
      "--checkpoint-every",
      "0"
    };
    for (String[] a : new String[][] {base, extra}) {
      for (int i = 0; i < a.length; i += 2) {
        flags.put(a[i], a[i + 1]);
      }
    }
    List<String> a = new ArrayList<>(List.of("train", "--demo"));
    flags.forEach((k, v) -> a.addAll(List.of(k, v)));
    return a;
  }

  static ChildProcess start(Path log, List<String> args) throws Exception {
    return ChildProcess.start(
        log, List.of("-Xmx1g"), "moetune.app.Main", args.toArray(String[]::new));
  }

  /** step -> value of field for every record of a type. */
  static Map<Long, Double> records(Path metrics, String type, String field) throws IOException {
    ObjectMapper json = new ObjectMapper();
    Map<Long, Double> out = new java.util.TreeMap<>();
    for (String line : Files.readAllLines(metrics)) {
      JsonNode n = json.readTree(line);
      if (n.get("type").asText().equals(type)) {
        Double before = out.put(n.get("step").asLong(), n.get(field).asDouble());
        assertEquals(null, before, "step " + n.get("step") + " logged twice in " + metrics);
      }
    }
    return out;
  }

  static void assertClose(Map<Long, Double> want, Map<Long, Double> got, String what) {
    assertEquals(want.keySet(), got.keySet(), what + ": steps");
    for (var e : want.entrySet()) {
      double w = e.getValue(), g = got.get(e.getKey());
      assertTrue(
          Math.abs(w - g) <= REL_TOL * Math.abs(w),
          what + " at step " + e.getKey() + ": " + g + " vs one process's " + w);
    }
  }

  /** Sends SIGTERM once the run has logged step 3; returns its exit status. */
  static int stopAfterStep3(ChildProcess p, Path metrics) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(180);
    while (lastStep(metrics) < 3 && p.process().isAlive() && System.nanoTime() < deadline) {
      Thread.sleep(50);
    }
    assertTrue(p.process().isAlive(), "ended before it could be stopped: " + p.output());
    p.process().destroy(); // SIGTERM, as Ctrl-C or a scheduler
    return p.waitFor(180);
  }

  static long lastStep(Path metrics) throws IOException {
    if (!Files.exists(metrics)) {
      return 0;
    }
    long step = 0;
    for (String line : Files.readAllLines(metrics)) {
      if (line.startsWith("{\"type\":\"step\"")) {
        step = new ObjectMapper().readTree(line).get("step").asLong();
      }
    }
    return step;
  }

  @Test
  void twoProcessesMatchOneStopOnSigtermAndResumeOnOneOrTwo(@TempDir Path tmp) throws Exception {
    // the reference: one process, the same 30 steps of 2 x 2 sequences
    Path one = tmp.resolve("one");
    Object[] ref = TrainCliTest.run(args(one).toArray(String[]::new));
    assertEquals(0, ref[0], (String) ref[2]);
    Map<Long, Double> want = records(one.resolve("metrics.jsonl"), "step", "loss");
    assertEquals(STEPS, want.size());

    // two ranks started by the launcher, stopped by SIGTERM to the launcher only
    Path two = tmp.resolve("two");
    ChildProcess launcher = start(tmp.resolve("two.log"), args(two, "--gpus", "2"));
    int status = stopAfterStep3(launcher, two.resolve("metrics.jsonl"));
    String log = launcher.output();
    assertEquals(143, status, log);
    assertTrue(log.contains("stopping the 2 ranks at the next step boundary"), log);
    assertTrue(log.contains("data parallel: rank 0 of 2 (TCP process group on the CPU"), log);
    assertTrue(log.contains("checkpoint (stop) step "), log);
    assertTrue(!log.contains("rank 1: "), "rank 1 printed: " + log);
    long stopStep = lastStep(two.resolve("metrics.jsonl"));
    assertTrue(stopStep >= 3 && stopStep < STEPS, "stopped at " + stopStep);
    assertTrue(
        Files.isDirectory(two.resolve("checkpoints/step-%08d".formatted(stopStep))),
        "rank 0 wrote the stop checkpoint");

    // 2 -> 1: the rest of the run in this process
    Object[] resumed = TrainCliTest.run("train", "--resume", two.toString());
    assertEquals(0, resumed[0], (String) resumed[1] + resumed[2]);
    assertClose(want, records(two.resolve("metrics.jsonl"), "step", "loss"), "2 then 1 ranks");
    assertClose(
        records(one.resolve("metrics.jsonl"), "eval", "eval_loss"),
        records(two.resolve("metrics.jsonl"), "eval", "eval_loss"),
        "2 then 1 ranks, eval");

    // 1 -> 2: a one-process run stopped, then resumed by the launcher on two ranks
    Path oneTwo = tmp.resolve("one-two");
    ChildProcess single = start(tmp.resolve("one-two.log"), args(oneTwo));
    assertEquals(143, stopAfterStep3(single, oneTwo.resolve("metrics.jsonl")), single.output());
    ChildProcess more =
        start(
            tmp.resolve("one-two-resumed.log"),
            List.of("train", "--resume", oneTwo.toString(), "--gpus", "2"));
    assertEquals(0, more.waitFor(300), more.output());
    assertTrue(more.output().contains("resumed from "), more.output());
    assertClose(want, records(oneTwo.resolve("metrics.jsonl"), "step", "loss"), "1 then 2 ranks");
    assertNotNull(
        Files.getLastModifiedTime(
            oneTwo.resolve("checkpoints/step-%08d/model.safetensors".formatted(STEPS))));
  }

  @Test
  void aDyingRankTakesTheJobDownWithOneLine(@TempDir Path tmp) throws Exception {
    Path out = tmp.resolve("run");
    ChildProcess launcher =
        start(tmp.resolve("run.log"), args(out, "--gpus", "2", "--max-steps", "100000"));
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(180);
    while (lastStep(out.resolve("metrics.jsonl")) < 1 && System.nanoTime() < deadline) {
      assertTrue(launcher.process().isAlive(), launcher.output());
      Thread.sleep(50);
    }
    ProcessHandle rank1 =
        launcher
            .process()
            .toHandle()
            .children()
            .filter(h -> environ(h).contains("RANK=1\0"))
            .findFirst()
            .orElseThrow();
    rank1.destroyForcibly(); // as a crash or the OOM killer
    assertEquals(1, launcher.waitFor(120), launcher.output());
    String log = launcher.output();
    assertTrue(
        log.contains(
            "moetune train: rank 1 exited with status 137 (its lines above start with 'rank 1:');"
                + " stopping the other ranks"),
        log);
    assertEquals(
        0, launcher.process().toHandle().descendants().filter(ProcessHandle::isAlive).count());
    // rank 0, which lost rank 1 mid-collective, says so in one line, without a stack trace
    assertTrue(
        log.matches(
            "(?s).*\nmoetune train: \\w+: rank (1 left the group|0 lost its connection to rank"
                + " 1) .*"),
        log);
    assertTrue(!log.contains("\tat "), log);
  }

  /** /proc/PID/environ (Linux), NUL-separated; empty when unreadable. */
  static String environ(ProcessHandle h) {
    try {
      return "\0"
          + Files.readString(Path.of("/proc/" + h.pid() + "/environ"), StandardCharsets.ISO_8859_1);
    } catch (IOException e) {
      return "";
    }
  }

  @Test
  void workerArgumentsDropOnlyGpus() {
    assertEquals(
        List.of("train", "--demo", "--out", "x", "--lr", "1e-3"),
        RankLauncher.withoutGpus(
            List.of("train", "--gpus", "4", "--demo", "--out", "x", "--gpus=2", "--lr", "1e-3")));
    Map<String, String> env = RankLauncher.rankEnv(4, 3, 29500);
    LaunchEnv parsed = LaunchEnv.from(env);
    assertEquals(new LaunchEnv(4, 3, 3, "127.0.0.1", 29500), parsed);
  }

  @Test
  void eachRankTakesItsGpuOrTheCpu() {
    LaunchEnv r1 = new LaunchEnv(2, 1, 1, "127.0.0.1", 29500);
    assertEquals("cuda:1", RankGroup.device("cuda", r1));
    assertEquals("cuda:1", RankGroup.device("auto", r1));
    assertEquals("cpu", RankGroup.device("cpu", r1));
    assertEquals("cuda:3", RankGroup.device("cuda:3", null));
    ConfigException e = assertThrows(ConfigException.class, () -> RankGroup.device("cuda:3", r1));
    assertEquals(
        "field 'device': cuda:3 with 2 ranks: each rank takes the GPU cuda:LOCAL_RANK; give"
            + " --device cuda (choose the GPUs with CUDA_VISIBLE_DEVICES) or --device cpu",
        e.getMessage());
  }

  @Test
  void gradAccumNotAMultipleOfTheRanksIsOneLineFromTheLauncher(@TempDir Path tmp) throws Exception {
    Path out = tmp.resolve("run");
    List<String> a = args(out, "--gpus", "2", "--grad-accum", "3");
    ChildProcess launcher = start(tmp.resolve("run.log"), a);
    int status = launcher.waitFor(180);
    String log = launcher.output();
    assertEquals(1, status, log);
    assertTrue(
        log.contains(
            "moetune train: field 'grad-accum': --grad-accum 3 is not a multiple of the 2"
                + " data-parallel ranks"),
        log);
    assertTrue(log.contains("moetune train: rank "), log);
  }

  /**
   * --expert-parallel 2 on 2 processes (micro-batch 2, grad-accum 2: the two ranks' micro-batches
   * run together) against one process with micro-batch 4: the same 4 sequences per forward, the aux
   * loss over all of them in both, so the losses agree to float32 rounding.
   */
  @Test
  void expertParallelMatchesOneProcessWithTheRanksRowsAsOneBatch(@TempDir Path tmp)
      throws Exception {
    Path one = tmp.resolve("one");
    Object[] ref =
        TrainCliTest.run(
            args(one, "--max-steps", "10", "--micro-batch", "4", "--grad-accum", "1")
                .toArray(String[]::new));
    assertEquals(0, ref[0], (String) ref[2]);
    Path ep = tmp.resolve("ep");
    ChildProcess p =
        start(
            tmp.resolve("ep.log"),
            args(ep, "--max-steps", "10", "--gpus", "2", "--expert-parallel", "2"));
    assertEquals(0, p.waitFor(300), p.output());
    assertTrue(
        p.output().contains("expert parallel: experts 0..1 of each layer on rank 0"), p.output());
    assertClose(
        records(one.resolve("metrics.jsonl"), "step", "loss"),
        records(ep.resolve("metrics.jsonl"), "step", "loss"),
        "expert parallel");
    assertClose(
        records(one.resolve("metrics.jsonl"), "step", "aux_loss"),
        records(ep.resolve("metrics.jsonl"), "step", "aux_loss"),
        "expert parallel, aux");
    Object[] alone =
        TrainCliTest.run(args(tmp.resolve("x"), "--expert-parallel", "2").toArray(String[]::new));
    assertEquals(2, alone[0]);
    assertEquals(
        "moetune train: --expert-parallel 2 with 1 rank(s): the experts are split over all ranks,"
            + " so give --expert-parallel 1 (or start several ranks with --gpus N)\n",
        alone[2]);
  }
}
