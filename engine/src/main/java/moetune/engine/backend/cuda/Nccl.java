package moetune.engine.backend.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.List;

/**
 * NCCL 2 (libnccl.so.2) bound with the FFM API, the way {@link Cublas} binds cuBLAS: only what
 * moetune's {@link NcclCommunicator} needs. One instance per process (the library is loaded once
 * into a global arena); communicators are raw ncclComm_t addresses.
 *
 * <p>The enum values and the unique id's size are those of NCCL's public nccl.h (src/nccl.h.in):
 * ncclResult_t ncclSuccess 0 .. ncclTimeout 8; ncclRedOp_t ncclSum 0; ncclDataType_t ncclInt32 2,
 * ncclFloat16 6, ncclFloat32 7, ncclBfloat16 9; ncclUniqueId is a struct of 128 chars passed to
 * ncclCommInitRank by value.
 */
public final class Nccl {
  /** NCCL_UNIQUE_ID_BYTES. */
  public static final int UNIQUE_ID_BYTES = 128;

  static final int SUCCESS = 0, IN_PROGRESS = 7;
  static final int SUM = 0;
  static final int INT32 = 2, FLOAT16 = 6, FLOAT32 = 7, BFLOAT16 = 9;

  private static final ValueLayout.OfLong PTR = ValueLayout.JAVA_LONG; // raw addresses
  private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT;
  private static final ValueLayout.OfLong SIZE_T = ValueLayout.JAVA_LONG;

  /** typedef struct { char internal[NCCL_UNIQUE_ID_BYTES]; } ncclUniqueId; */
  static final StructLayout UNIQUE_ID =
      MemoryLayout.structLayout(
          MemoryLayout.sequenceLayout(UNIQUE_ID_BYTES, ValueLayout.JAVA_BYTE).withName("internal"));

  private static Nccl instance;

  private final Path library;
  private final Arena arena = Arena.global();
  private final MethodHandle getVersion, getUniqueId, commInitRank, commDestroy, errorString;
  private final MethodHandle allReduce, reduceScatter, allGather, send, recv, groupStart, groupEnd;

  /**
   * The process's binding; loads libnccl on first use, or throws one line saying where it looked.
   */
  public static synchronized Nccl get() {
    if (instance == null) {
      instance = new Nccl(find(System.getenv(), SYSTEM_DIRS, WHEEL_ROOTS));
    }
    return instance;
  }

  private Nccl(Path library) {
    this.library = library;
    SymbolLookup lib = SymbolLookup.libraryLookup(library, arena);
    Linker l = Linker.nativeLinker();
    getVersion = bind(l, lib, "ncclGetVersion", FunctionDescriptor.of(INT, PTR));
    getUniqueId = bind(l, lib, "ncclGetUniqueId", FunctionDescriptor.of(INT, PTR));
    // ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank)
    commInitRank =
        bind(l, lib, "ncclCommInitRank", FunctionDescriptor.of(INT, PTR, INT, UNIQUE_ID, INT));
    commDestroy = bind(l, lib, "ncclCommDestroy", FunctionDescriptor.of(INT, PTR));
    errorString =
        bind(l, lib, "ncclGetErrorString", FunctionDescriptor.of(ValueLayout.ADDRESS, INT));
    // (sendbuff, recvbuff, count, datatype, op, comm, stream)
    allReduce =
        bind(
            l,
            lib,
            "ncclAllReduce",
            FunctionDescriptor.of(INT, PTR, PTR, SIZE_T, INT, INT, PTR, PTR));
    // (sendbuff, recvbuff, recvcount, datatype, op, comm, stream)
    reduceScatter =
        bind(
            l,
            lib,
            "ncclReduceScatter",
            FunctionDescriptor.of(INT, PTR, PTR, SIZE_T, INT, INT, PTR, PTR));
    // (sendbuff, recvbuff, sendcount, datatype, comm, stream)
    allGather =
        bind(l, lib, "ncclAllGather", FunctionDescriptor.of(INT, PTR, PTR, SIZE_T, INT, PTR, PTR));
    // (buff, count, datatype, peer, comm, stream)
    send = bind(l, lib, "ncclSend", FunctionDescriptor.of(INT, PTR, SIZE_T, INT, INT, PTR, PTR));
    recv = bind(l, lib, "ncclRecv", FunctionDescriptor.of(INT, PTR, SIZE_T, INT, INT, PTR, PTR));
    groupStart = bind(l, lib, "ncclGroupStart", FunctionDescriptor.of(INT));
    groupEnd = bind(l, lib, "ncclGroupEnd", FunctionDescriptor.of(INT));
  }

  public Path library() {
    return library;
  }

  /** NCCL_VERSION_CODE of the loaded library (e.g. 22903 for 2.29.3). */
  public int version() {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(INT);
      call(getVersion, "ncclGetVersion", "", v.address());
      return v.get(INT, 0);
    }
  }

  /** A fresh unique id (rank 0 makes it and hands it to the others). */
  public byte[] uniqueId() {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment id = a.allocate(UNIQUE_ID);
      call(getUniqueId, "ncclGetUniqueId", "", id.address());
      return id.toArray(ValueLayout.JAVA_BYTE);
    }
  }

  /**
   * ncclCommInitRank on the calling thread's current CUDA context (bind the backend first); blocks
   * until all nranks ranks have called it. Returns the ncclComm_t.
   */
  long commInitRank(int nranks, byte[] uniqueId, int rank) {
    if (uniqueId.length != UNIQUE_ID_BYTES) {
      throw new IllegalArgumentException(
          "ncclCommInitRank: a unique id has "
              + UNIQUE_ID_BYTES
              + " bytes, got "
              + uniqueId.length);
    }
    try (Arena a = Arena.ofConfined()) {
      MemorySegment comm = a.allocate(PTR);
      MemorySegment id = a.allocate(UNIQUE_ID);
      MemorySegment.copy(uniqueId, 0, id, ValueLayout.JAVA_BYTE, 0, UNIQUE_ID_BYTES);
      call(
          commInitRank,
          "ncclCommInitRank",
          "rank " + rank + " of " + nranks,
          comm.address(),
          nranks,
          id,
          rank);
      return comm.get(PTR, 0);
    }
  }

  void commDestroy(long comm) {
    call(commDestroy, "ncclCommDestroy", "", comm);
  }

  void allReduce(long send, long recv, long count, int type, long comm, long stream, String ctx) {
    call(allReduce, "ncclAllReduce", ctx, send, recv, count, type, SUM, comm, stream);
  }

  void reduceScatter(
      long send, long recv, long recvCount, int type, long comm, long stream, String ctx) {
    call(reduceScatter, "ncclReduceScatter", ctx, send, recv, recvCount, type, SUM, comm, stream);
  }

  void allGather(
      long send, long recv, long sendCount, int type, long comm, long stream, String ctx) {
    call(allGather, "ncclAllGather", ctx, send, recv, sendCount, type, comm, stream);
  }

  void send(long buf, long count, int type, int peer, long comm, long stream, String ctx) {
    call(send, "ncclSend", ctx, buf, count, type, peer, comm, stream);
  }

  void recv(long buf, long count, int type, int peer, long comm, long stream, String ctx) {
    call(recv, "ncclRecv", ctx, buf, count, type, peer, comm, stream);
  }

  void groupStart() {
    call(groupStart, "ncclGroupStart", "");
  }

  void groupEnd(String ctx) {
    call(groupEnd, "ncclGroupEnd", ctx);
  }

  /** ncclGetErrorString's text for a result code. */
  String errorString(int rc) {
    try {
      MemorySegment s = (MemorySegment) errorString.invokeExact(rc);
      return s.reinterpret(1024).getString(0);
    } catch (Throwable t) {
      return "ncclResult " + rc;
    }
  }

  private static MethodHandle bind(
      Linker linker, SymbolLookup lib, String name, FunctionDescriptor fd) {
    MemorySegment sym =
        lib.find(name).orElseThrow(() -> new CudaException("NCCL has no symbol " + name));
    return linker.downcallHandle(sym, fd);
  }

  private void call(MethodHandle h, String name, String context, Object... args) {
    int rc;
    try {
      rc = (int) h.invokeWithArguments(args);
    } catch (Throwable t) {
      throw new CudaException("calling " + name + ": " + t);
    }
    if (rc != SUCCESS) {
      throw new CudaException(name, rc, resultName(rc) + ": " + errorString(rc), context);
    }
  }

  /** ncclResult_t names (nccl.h). */
  static String resultName(int rc) {
    return switch (rc) {
      case 0 -> "ncclSuccess";
      case 1 -> "ncclUnhandledCudaError";
      case 2 -> "ncclSystemError";
      case 3 -> "ncclInternalError";
      case 4 -> "ncclInvalidArgument";
      case 5 -> "ncclInvalidUsage";
      case 6 -> "ncclRemoteError";
      case 7 -> "ncclInProgress";
      case 8 -> "ncclTimeout";
      default -> "ncclResult " + rc;
    };
  }

  static final NativeLibrarySearch SEARCH =
      new NativeLibrarySearch(
          "NCCL 2",
          List.of("libnccl.so.2"),
          "MOETUNE_NCCL",
          "NCCL_HOME",
          List.of("nvidia/nccl/lib"),
          "several GPUs need NCCL 2: install it (apt install libnccl2, or pip install"
              + " nvidia-nccl-cu13)");

  static final List<Path> SYSTEM_DIRS = NativeLibrarySearch.SYSTEM_DIRS;

  static final List<Path> WHEEL_ROOTS = NativeLibrarySearch.WHEEL_ROOTS;

  /**
   * Finds libnccl.so.2 ({@link NativeLibrarySearch}: $MOETUNE_NCCL, $NCCL_HOME/lib,
   * LD_LIBRARY_PATH, the CUDA toolkit folders, the system library folders, then pip's
   * nvidia/nccl/lib). An empty {@code systemDirs} also skips the toolkit folders (tests).
   */
  static Path find(
      java.util.Map<String, String> env, List<Path> systemDirs, List<Path> wheelRoots) {
    return SEARCH.find(
        env,
        systemDirs.isEmpty() ? List.of() : NativeLibrarySearch.TOOLKIT_ROOTS,
        systemDirs,
        wheelRoots);
  }
}
