package moetune.engine.model;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import moetune.engine.backend.Backend;
import moetune.engine.backend.Communicator;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * The experts of a model split over an expert-parallel group ({@link ExpertShard}) gathered into
 * hub tensors, for checkpoints in the one-device format (the weights, and {@code
 * moetune.engine.optim.ShardedAdamW}'s moments).
 */
public final class ExpertGather {
  private ExpertGather() {}

  /** See {@link MixtralModel#gatherExperts}. */
  static Map<String, HostTensor> experts(Communicator comm, Parameters params, boolean keep) {
    Map<String, HostTensor> out = new LinkedHashMap<>();
    if (!params.expertShard().split()) {
      return out;
    }
    for (Parameters.Slice fused : params.expertSlices()) {
      out.putAll(expertBlocks(comm, params, fused, params.value(fused), keep));
    }
    return out;
  }

  /**
   * One fused expert tensor of a split model gathered expert by expert: {@code local} (E/N, O, I)
   * is this rank's block of it (weights or an optimizer moment, any float dtype); returns every
   * expert's hub tensors (float32) where keep. Transient device memory: N experts of one tensor.
   */
  public static Map<String, HostTensor> expertBlocks(
      Communicator comm, Parameters params, Parameters.Slice fused, Tensor local, boolean keep) {
    Backend be = local.backend();
    int n = comm.size();
    int el = (int) fused.shape()[0];
    long per = fused.numel() / el;
    HostTensor[][] parts = new HostTensor[el * n][];
    try (Tensor mine = be.empty(DType.F32, per);
        Tensor all = be.empty(DType.F32, per * n)) {
      for (int i = 0; i < el; i++) {
        be.copy(local.view(i * per, per), mine);
        comm.allGather(mine, all);
        if (!keep) {
          continue;
        }
        for (int j = 0; j < n; j++) {
          int e = j * el + i;
          List<Parameters.Slice> hub = params.hubPartsOfExpert(fused, e);
          parts[e] = new HostTensor[hub.size()];
          for (int h = 0; h < hub.size(); h++) {
            Parameters.Slice part = hub.get(h);
            parts[e][h] = be.download(all.view(j * per + part.offset(), part.shape()));
          }
        }
      }
    }
    Map<String, HostTensor> out = new LinkedHashMap<>();
    if (keep) {
      for (int e = 0; e < el * n; e++) {
        List<Parameters.Slice> hub = params.hubPartsOfExpert(fused, e);
        for (int h = 0; h < hub.size(); h++) {
          out.put(hub.get(h).name(), parts[e][h]);
        }
      }
    }
    return out;
  }
}
