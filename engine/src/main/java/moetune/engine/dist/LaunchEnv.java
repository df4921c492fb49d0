package moetune.engine.dist;

import java.util.Map;

/**
 * A rank started by an outside launcher (torchrun, SLURM via srun with the same variables, or a
 * script): WORLD_SIZE, RANK, LOCAL_RANK (the GPU on this host), MASTER_ADDR and MASTER_PORT (where
 * rank 0 serves the NCCL unique id, see {@link Rendezvous}). Absent WORLD_SIZE means no launcher.
 *
 * <p>The port: torchrun's agent hosts its own store on MASTER_PORT (it tells its workers so with
 * TORCHELASTIC_USE_AGENT_STORE=True), where moetune's rank 0 would listen too; there moetune takes
 * MASTER_PORT + 1. MOETUNE_MASTER_PORT, when set, is the port in every case.
 */
public record LaunchEnv(int worldSize, int rank, int localRank, String masterAddr, int masterPort) {

  /** The launcher's rank from the environment, or null when WORLD_SIZE is not set. */
  public static LaunchEnv from(Map<String, String> env) {
    String ws = env.get("WORLD_SIZE");
    if (ws == null || ws.isBlank()) {
      return null;
    }
    int world = number(env, "WORLD_SIZE", 1, Integer.MAX_VALUE);
    int rank = number(env, "RANK", 0, world - 1);
    int local = env.containsKey("LOCAL_RANK") ? number(env, "LOCAL_RANK", 0, 1 << 16) : rank;
    String addr = env.get("MASTER_ADDR");
    if (world > 1 && (addr == null || addr.isBlank())) {
      throw new IllegalArgumentException(
          "WORLD_SIZE="
              + world
              + " but MASTER_ADDR is not set; set it to rank 0's host name or address (torchrun"
              + " and the SLURM scripts in docs/multi-gpu.md set it)");
    }
    int port = 0;
    if (world > 1) {
      if (env.containsKey("MOETUNE_MASTER_PORT")) {
        port = number(env, "MOETUNE_MASTER_PORT", 1, 65535);
      } else {
        port = number(env, "MASTER_PORT", 1, 65535);
        if ("true".equalsIgnoreCase(env.getOrDefault("TORCHELASTIC_USE_AGENT_STORE", ""))) {
          if (port == 65535) {
            throw new IllegalArgumentException(
                "MASTER_PORT=65535 under torchrun's agent store leaves no port for moetune's"
                    + " rank 0 (it takes MASTER_PORT + 1); set MOETUNE_MASTER_PORT");
          }
          port++; // the agent's store is on MASTER_PORT
        }
      }
    }
    return new LaunchEnv(world, rank, local, addr, port);
  }

  private static int number(Map<String, String> env, String name, int min, int max) {
    String v = env.get(name);
    if (v == null || v.isBlank()) {
      throw new IllegalArgumentException(
          name + " is not set but WORLD_SIZE is; a launcher sets both (see docs/multi-gpu.md)");
    }
    int n;
    try {
      n = Integer.parseInt(v.strip());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(name + "=" + v + " is not a whole number");
    }
    if (n < min || n > max) {
      throw new IllegalArgumentException(
          name + "=" + v + " is outside " + min + ".." + max + " (WORLD_SIZE ranks, from 0)");
    }
    return n;
  }
}
