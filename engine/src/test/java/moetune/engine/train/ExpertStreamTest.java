package moetune.engine.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.List;
import moetune.engine.backend.cpu.CpuBackend;
import moetune.engine.dist.LocalCommunicator;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.hf.MixtralNames;
import moetune.engine.model.ExpertShard;
import moetune.engine.model.ExpertStream;
import moetune.engine.model.MixtralModel;
import moetune.engine.model.ModelOptions;
import moetune.engine.model.Parameters;
import moetune.engine.tensor.HostTensor;
import org.junit.jupiter.api.Test;

/**
 * Split experts streamed to rank 0 one hub tensor at a time in the writer's order (the checkpoint
 * path of expert parallel; ExpertShardTrainTest checks the written checkpoints bit for bit): every
 * expert arrives with the unsplit model's values, a writer out of order is one line, and the
 * transfers a writer skipped are drained so no rank waits.
 */
class ExpertStreamTest {

  static MixtralModel split(CpuBackend cpu, MixtralConfig cfg, int rank) {
    return MixtralModel.create(
        cfg, FreshModel.weights(cfg, 5), cpu, ModelOptions.defaults(), new ExpertShard(rank, 2));
  }

  @Test
  void everyExpertReachesRankZeroInTheWritersOrder() {
    MixtralConfig cfg = TinyMixtral.config(0.02);
    List<String> order = new ArrayList<>(MixtralNames.hubShapes(cfg).keySet());
    List<List<String>> got =
        LocalCommunicator.run(
            2,
            comm -> {
              List<String> seen = new ArrayList<>();
              try (CpuBackend cpu = new CpuBackend(1);
                  MixtralModel m = split(cpu, cfg, comm.rank());
                  MixtralModel whole =
                      MixtralModel.create(
                          cfg, FreshModel.weights(cfg, 5), cpu, ModelOptions.defaults())) {
                m.setExpertParallel(comm);
                Parameters p = m.parameters();
                try (ExpertStream s = new ExpertStream(comm, p, p::value, order)) {
                  if (comm.rank() != 0) {
                    s.serve();
                    return seen;
                  }
                  for (String name : order) {
                    if (s.carries(name)) {
                      HostTensor t = s.next(name);
                      assertArrayEquals(
                          whole.parameter(name).toFloatArray(), t.toFloatArray(), name);
                      seen.add(name);
                    }
                  }
                  assertEquals(0, s.finish());
                }
              }
              return seen;
            });
    assertEquals(2 * 4 * 3, got.get(0).size(), "2 layers x 4 experts x w1, w2, w3");
  }

  @Test
  void aWriterOutOfOrderIsOneLineAndWhatItSkippedIsDrained() {
    MixtralConfig cfg = TinyMixtral.config(0.02);
    List<String> order = new ArrayList<>(MixtralNames.hubShapes(cfg).keySet());
    List<String> result =
        LocalCommunicator.run(
            2,
            comm -> {
              try (CpuBackend cpu = new CpuBackend(1);
                  MixtralModel m = split(cpu, cfg, comm.rank())) {
                m.setExpertParallel(comm);
                Parameters p = m.parameters();
                try (ExpertStream s = new ExpertStream(comm, p, p::value, order)) {
                  if (comm.rank() != 0) {
                    s.serve();
                    return "served";
                  }
                  String first = order.stream().filter(s::carries).findFirst().orElseThrow();
                  String last = order.reversed().stream().filter(s::carries).findFirst().get();
                  IllegalStateException e =
                      assertThrows(IllegalStateException.class, () -> s.next(last));
                  assertEquals(
                      "the checkpoint writer asked for "
                          + last
                          + " but the other ranks send "
                          + first
                          + " next: the writer's order is not the order given to ExpertStream",
                      e.getMessage());
                  return "drained " + s.finish();
                }
              }
            });
    assertEquals(List.of("drained 24", "served"), result);
  }
}
