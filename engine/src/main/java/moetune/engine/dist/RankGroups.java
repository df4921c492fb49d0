package moetune.engine.dist;

import java.io.IOException;
import java.util.function.Consumer;
import moetune.engine.backend.Backend;
import moetune.engine.backend.Communicator;
import moetune.engine.backend.cuda.CudaBackend;
import moetune.engine.backend.cuda.Nccl;
import moetune.engine.backend.cuda.NcclCommunicator;

/**
 * One process's place in a data-parallel group described by a {@link LaunchEnv} (started by {@code
 * --gpus N}, torchrun, SLURM or a script): which device it opens and the communicator it joins
 * (NCCL with the id {@link Rendezvous} hands out on a GPU, {@link TcpCommunicator} on the CPU).
 * Shared by {@code train}, {@code bench step} and the engine's own benchmark entry.
 */
public final class RankGroups {
  private RankGroups() {}

  /** Seconds every rank has to join the group after the first one opened its device. */
  public static final long JOIN_TIMEOUT_MS = 300_000;

  /**
   * The device of one rank: {@code cpu} stays the CPU, {@code cuda} and {@code auto} become {@code
   * cuda:LOCAL_RANK} (one GPU per process, as torchrun's LOCAL_RANK means it).
   */
  public static String device(String device, LaunchEnv launch) {
    if (launch == null || launch.worldSize() == 1) {
      return device;
    }
    String d = device.strip().toLowerCase(java.util.Locale.ROOT);
    if (d.equals("cpu")) {
      return d;
    }
    if (d.equals("cuda") || d.equals("auto")) {
      return "cuda:" + launch.localRank();
    }
    throw new IllegalArgumentException(
        "field 'device': "
            + device
            + " with "
            + launch.worldSize()
            + " ranks: each rank takes the GPU cuda:LOCAL_RANK; give --device cuda (choose the"
            + " GPUs with CUDA_VISIBLE_DEVICES) or --device cpu");
  }

  /** The group this rank trains in (NCCL on a GPU, TCP on the CPU), or null for one rank. */
  public static Communicator join(Backend backend, LaunchEnv launch, Consumer<String> log)
      throws IOException {
    if (launch == null || launch.worldSize() == 1) {
      return null;
    }
    Communicator c;
    if (backend instanceof CudaBackend cuda) {
      Nccl nccl = Nccl.get();
      byte[] id = Rendezvous.exchange(launch, nccl::uniqueId, JOIN_TIMEOUT_MS);
      c = new NcclCommunicator(cuda, launch.worldSize(), launch.rank(), id);
    } else {
      c = TcpCommunicator.connect(launch, JOIN_TIMEOUT_MS);
    }
    log.accept(
        "data parallel: rank "
            + launch.rank()
            + " of "
            + launch.worldSize()
            + " ("
            + (c instanceof TcpCommunicator ? "TCP process group on the CPU" : "NCCL")
            + ", rank 0 at "
            + launch.masterAddr()
            + ":"
            + launch.masterPort()
            + ")");
    return c;
  }
}
