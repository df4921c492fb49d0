package moetune.engine.model;

import java.util.ArrayDeque;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Function;
import moetune.engine.backend.Backend;
import moetune.engine.backend.Communicator;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * The expert tensors of a model split over an expert-parallel group ({@link ExpertShard}) sent to
 * rank 0 one hub tensor at a time, in the order rank 0's checkpoint writer asks for them, so rank 0
 * writes the one-device format without holding every expert at once (its host memory holds the
 * tensor being written; the device one transient buffer of it). The other ranks take part in the
 * same transfers in the same order ({@link #serve}); each is a collective of the group (an
 * all-to-all in which only the owner sends and only rank 0 receives); an expert of rank 0's own
 * needs none.
 *
 * <p>The order: the caller names it (the writer's, e.g. {@code MixtralNames.hubShapes}' order), and
 * rank 0 checks every request against it, so a writer that asked in another order fails with one
 * line instead of receiving the wrong tensor; {@link #finish} takes the transfers the writer did
 * not ask for, so no rank is left waiting.
 */
public final class ExpertStream implements AutoCloseable {
  private record Part(
      Parameters.Slice fused,
      int expert,
      Parameters.Slice hub,
      Function<Parameters.Slice, Tensor> local) {}

  /**
   * One kind of expert tensor that travels: named {@code prefix} + hub name, with {@code local}
   * this rank's (E/N, O, I) block of a fused expert tensor (its weights, or an optimizer moment).
   */
  public record Source(String prefix, Function<Parameters.Slice, Tensor> local) {}

  private final Communicator comm;
  private final Map<String, Part> parts = new LinkedHashMap<>();
  private final Deque<String> expected = new ArrayDeque<>();
  private final int perRank; // experts per rank
  private final Backend be;
  private final Tensor none; // F32 (1): the buffer of a rank that neither sends nor receives

  /**
   * @param params a split model's parameters (every expert hub name of every layer travels)
   * @param local this rank's (E/N, O, I) block of a fused expert tensor: its weights
   * @param order every name the writer will ask for, in its order (others are skipped)
   */
  public ExpertStream(
      Communicator comm,
      Parameters params,
      Function<Parameters.Slice, Tensor> local,
      Iterable<String> order) {
    this(comm, params, java.util.List.of(new Source("", local)), order);
  }

  /** As above with several kinds of expert tensor (the two AdamW moments), by name prefix. */
  public ExpertStream(
      Communicator comm,
      Parameters params,
      java.util.List<Source> sources,
      Iterable<String> order) {
    this.comm = comm;
    boolean split = params.expertShard().split() && !params.expertSlices().isEmpty();
    this.perRank = split ? (int) params.expertSlices().get(0).shape()[0] : 0; // E/N
    this.be = params.masterFlat().backend();
    if (split) {
      for (Parameters.Slice fused : params.expertSlices()) {
        for (int e = 0; e < perRank * comm.size(); e++) {
          for (Parameters.Slice hub : params.hubPartsOfExpert(fused, e)) {
            for (Source src : sources) {
              parts.put(src.prefix() + hub.name(), new Part(fused, e, hub, src.local()));
            }
          }
        }
      }
    }
    for (String name : order) {
      if (parts.containsKey(name)) {
        expected.add(name);
      }
    }
    this.none = be.zeros(DType.F32, 1);
  }

  /** Whether {@code name} is a split expert's tensor that travels to rank 0. */
  public boolean carries(String name) {
    return parts.containsKey(name);
  }

  /**
   * Rank 0: the next carried tensor, float32, which must be {@code name} (the order given).
   * Transient: one hub tensor on the device and on the host.
   */
  public HostTensor next(String name) {
    if (comm.rank() != 0) {
      throw new IllegalStateException("ExpertStream.next is rank 0's; the others serve()");
    }
    String want = expected.peekFirst();
    if (!name.equals(want)) {
      throw new IllegalStateException(
          "the checkpoint writer asked for "
              + name
              + " but the other ranks send "
              + (want == null ? "nothing more" : want)
              + " next: the writer's order is not the order given to ExpertStream");
    }
    expected.removeFirst();
    return transfer(parts.get(name));
  }

  /** A rank other than 0: takes part in every transfer, in the order given. */
  public void serve() {
    while (!expected.isEmpty()) {
      transfer(parts.get(expected.removeFirst()));
    }
  }

  /** Rank 0, after the writer: the transfers it did not ask for, discarded, so no rank waits. */
  public int finish() {
    int left = 0;
    while (!expected.isEmpty()) {
      transfer(parts.get(expected.removeFirst()));
      left++;
    }
    return left;
  }

  /** The hub tensor from its owner to rank 0 (returned there, null elsewhere). */
  private HostTensor transfer(Part p) {
    int owner = p.expert() / perRank;
    int me = comm.rank();
    long n = p.hub().numel();
    long per = p.fused().numel() / p.fused().shape()[0];
    Tensor mine = null;
    if (me == owner) {
      long at = (p.expert() - (long) owner * perRank) * per + p.hub().offset();
      mine = p.local().apply(p.fused()).view(at, p.hub().shape());
    }
    if (owner == 0) {
      return me == 0 ? be.download(mine).to(DType.F32) : null;
    }
    long[] send = new long[comm.size()], recv = new long[comm.size()];
    if (me == owner) {
      send[0] = n;
    }
    if (me == 0) {
      recv[owner] = n;
    }
    try (Tensor into = me == 0 ? be.empty(DType.F32, p.hub().shape()) : null;
        Tensor from = me == owner ? floats(mine) : null) {
      comm.allToAll(
          from == null ? none : from.reshape(n), send, into == null ? none : into.reshape(n), recv);
      return me == 0 ? be.download(into) : null;
    }
  }

  /** t as float32 (a copy when it is not; the caller closes it). */
  private Tensor floats(Tensor t) {
    Tensor f = be.empty(DType.F32, t.shape());
    be.copy(t, f);
    return f;
  }

  @Override
  public void close() {
    none.close();
  }
}
