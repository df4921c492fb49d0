package moetune.engine.backend.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * cuDNN 9's backend descriptor API bound with FFM (the C API under cudnn-frontend): descriptors are
 * created, given attributes, finalized, and an execution plan runs a finalized operation graph on a
 * variant pack of device pointers. Only what {@link CudnnAttention} needs. The library is found by
 * {@link #SEARCH}; its sub-libraries (libcudnn_graph, the engine libraries) are loaded from the
 * same folder first, so cuDNN's own dlopen of them by name finds them without LD_LIBRARY_PATH.
 *
 * <p>Constants are the values of cudnn_graph.h (cuDNN 9): they are part of its stable C ABI.
 */
final class Cudnn implements AutoCloseable {
  static final NativeLibrarySearch SEARCH =
      new NativeLibrarySearch(
          "cuDNN 9",
          List.of("libcudnn.so.9"),
          "MOETUNE_CUDNN",
          "CUDNN_HOME",
          List.of("nvidia/cudnn/lib"),
          "install cuDNN 9 (apt install libcudnn9-cuda-13, or pip install nvidia-cudnn-cu13)");

  // cudnnBackendDescriptorType_t
  static final int POINTWISE = 0,
      ENGINECFG = 3,
      ENGINEHEUR = 4,
      EXECUTION_PLAN = 5,
      OP_POINTWISE = 13,
      OPERATION_GRAPH = 15,
      VARIANT_PACK = 16,
      TENSOR = 17,
      MATMUL = 18,
      OP_MATMUL = 19,
      REDUCTION = 21,
      OP_REDUCTION = 22,
      OP_RESHAPE = 31;
  // cudnnBackendAttributeType_t
  static final int T_HANDLE = 0,
      T_DATA_TYPE = 1,
      T_BOOLEAN = 2,
      T_INT64 = 3,
      T_FLOAT = 4,
      T_DOUBLE = 5,
      T_VOID_PTR = 6,
      T_HEUR_MODE = 8,
      T_POINTWISE_MODE = 14,
      T_DESCRIPTOR = 15,
      T_REDUCTION_OP = 18,
      T_CHAR = 24;
  // cudnnDataType_t
  static final int FLOAT = 0, INT32 = 4, BFLOAT16 = 9, INT64 = 10, BOOLEAN = 11;
  // cudnnPointwiseMode_t
  static final int PW_ADD = 0,
      PW_MUL = 1,
      PW_DIV = 6,
      PW_SUB = 9,
      PW_EXP = 13,
      PW_LOG = 15,
      PW_IDENTITY = 21,
      PW_CMP_GT = 302,
      PW_CMP_GE = 303,
      PW_CMP_LT = 304,
      PW_LOGICAL_AND = 400,
      PW_GEN_INDEX = 501,
      PW_BINARY_SELECT = 601;
  // cudnnReduceTensorOp_t
  static final int RED_ADD = 0, RED_MAX = 3;
  // cudnnBackendHeurMode_t
  static final int HEUR_A = 3, HEUR_FALLBACK = 2;
  // cudnnBackendAttributeName_t
  static final int A_PW_MODE = 0,
      A_PW_MATH_PREC = 1,
      A_PW_AXIS = 9,
      A_HEUR_MODE = 200,
      A_HEUR_GRAPH = 201,
      A_HEUR_RESULTS = 202,
      A_PLAN_HANDLE = 400,
      A_PLAN_ENGINE_CONFIG = 401,
      A_PLAN_WORKSPACE = 402,
      A_PLAN_JSON = 405,
      A_OP_PW_DESC = 750,
      A_OP_PW_X = 751,
      A_OP_PW_B = 752,
      A_OP_PW_Y = 753,
      A_OP_PW_ALPHA1 = 754,
      A_OP_PW_ALPHA2 = 755,
      A_OP_PW_T = 758,
      A_GRAPH_HANDLE = 800,
      A_GRAPH_OPS = 801,
      A_T_ALIGNMENT = 900,
      A_T_DATA_TYPE = 901,
      A_T_DIMS = 902,
      A_T_STRIDES = 903,
      A_T_UID = 906,
      A_T_VIRTUAL = 907,
      A_T_BY_VALUE = 908,
      A_T_RAGGED_OFFSET = 913,
      A_VP_UIDS = 1000,
      A_VP_POINTERS = 1001,
      A_VP_WORKSPACE = 1003,
      A_MM_COMP_TYPE = 1500,
      A_MM_PADDING_VALUE = 1503,
      A_OP_MM_A = 1520,
      A_OP_MM_B = 1521,
      A_OP_MM_C = 1522,
      A_OP_MM_DESC = 1523,
      A_OP_MM_M_OVERRIDE = 1525,
      A_OP_MM_N_OVERRIDE = 1526,
      A_OP_MM_K_OVERRIDE = 1527,
      A_RED_OPERATOR = 1600,
      A_RED_COMP_TYPE = 1601,
      A_OP_RED_X = 1610,
      A_OP_RED_Y = 1611,
      A_OP_RED_DESC = 1612,
      A_OP_RESHAPE_X = 2200,
      A_OP_RESHAPE_Y = 2201;

  private static final ValueLayout.OfLong PTR = ValueLayout.JAVA_LONG;
  private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT;
  private static final String[] SUB_LIBRARIES = {
    "libcudnn_graph.so.9",
    "libcudnn_engines_precompiled.so.9",
    "libcudnn_engines_runtime_compiled.so.9",
    "libcudnn_heuristic.so.9",
    "libcudnn_ops.so.9",
    "libcudnn_cnn.so.9",
    "libcudnn_adv.so.9"
  };

  /**
   * The libraries stay loaded for the life of the process: closing a backend must not dlclose
   * cuDNN, whose engine sub-libraries keep process-wide state (a second backend's heuristics query
   * crashed in libcudnn_heuristic after the first backend's arena unloaded them).
   */
  private static final Arena LIBRARIES = Arena.global();

  private final Arena arena = Arena.ofShared();
  private final Path library;
  private final MethodHandle create,
      destroyDesc,
      setAttr,
      getAttr,
      finalizeDesc,
      execute,
      errorString,
      lastError,
      destroyHandle;
  private final long handle;
  private final long version;

  /**
   * The oldest cuDNN whose fused attention graphs moetune has run on a GPU (9.19: PyTorch 2.11's
   * copy). cuDNN 9.14 crashed (SIGSEGV in its engine heuristics) on a sequence length that is not a
   * multiple of 64, which no Java code can catch, so older copies are never loaded.
   */
  static final long MIN_VERSION = 91900;

  /** Loads the newest suitable cuDNN on this machine (see {@link #choose}). */
  Cudnn(long stream) {
    this(
        choose(
            System.getenv(),
            NativeLibrarySearch.TOOLKIT_ROOTS,
            NativeLibrarySearch.SYSTEM_DIRS,
            NativeLibrarySearch.WHEEL_ROOTS),
        stream);
  }

  /**
   * The first copy in search order whose version, read from its file names or its pip wheel's
   * dist-info (nothing is loaded to learn it), is at least {@link #MIN_VERSION}; else the first
   * copy of unknown version (its version is checked once loaded); MOETUNE_CUDNN overrides the
   * choice. Throws with one line naming what was found when nothing suits.
   */
  static Path choose(
      java.util.Map<String, String> env,
      List<Path> toolkitRoots,
      List<Path> systemDirs,
      List<Path> wheelRoots) {
    List<Path> all = SEARCH.candidates(env, toolkitRoots, systemDirs, wheelRoots, false);
    if (all.isEmpty()) {
      throw SEARCH.notFound();
    }
    if (env.get(SEARCH.overrideVar()) != null && !env.get(SEARCH.overrideVar()).isBlank()) {
      return all.get(0);
    }
    Path unknown = null;
    StringBuilder seen = new StringBuilder();
    for (Path p : all) {
      long v = versionOf(p);
      if (v >= MIN_VERSION) {
        return p;
      }
      if (v < 0 && unknown == null) {
        unknown = p;
      }
      seen.append(seen.isEmpty() ? "" : ", ")
          .append(p)
          .append(v < 0 ? " (version unknown)" : " (" + v + ")");
    }
    if (unknown != null) {
      return unknown;
    }
    throw new CudaException(
        "cuDNN "
            + MIN_VERSION
            + " or newer is needed for fused attention; found only "
            + seen
            + ": install a newer one (pip install nvidia-cudnn-cu13) or set MOETUNE_CUDNN=/path/to/libcudnn.so.9");
  }

  private static final java.util.regex.Pattern SO_VERSION =
      java.util.regex.Pattern.compile("libcudnn[a-z_]*\\.so\\.(\\d+)\\.(\\d+)\\.(\\d+)");
  private static final java.util.regex.Pattern WHEEL_VERSION =
      java.util.regex.Pattern.compile("nvidia_cudnn_cu\\d+-(\\d+)\\.(\\d+)\\.(\\d+).*\\.dist-info");

  /** cuDNN's version code (91900 for 9.19.0) from file names, or -1 when they do not say. */
  static long versionOf(Path library) {
    try {
      java.util.regex.Matcher m = SO_VERSION.matcher(library.toRealPath().getFileName().toString());
      if (m.matches()) {
        return code(m);
      }
      Path dir = library.toAbsolutePath().getParent();
      try (java.util.stream.Stream<Path> s = Files.list(dir)) {
        for (Path f : s.sorted().toList()) {
          m = SO_VERSION.matcher(f.getFileName().toString());
          if (m.matches()) {
            return code(m);
          }
        }
      }
      // pip: site-packages/nvidia/cudnn/lib/libcudnn.so.9 beside
      // nvidia_cudnn_cu13-9.19.0.56.dist-info
      Path site = dir;
      for (int up = 0; up < 3 && site != null; up++) site = site.getParent();
      if (site != null && Files.isDirectory(site)) {
        try (java.util.stream.Stream<Path> s = Files.list(site)) {
          for (Path f : s.sorted().toList()) {
            m = WHEEL_VERSION.matcher(f.getFileName().toString());
            if (m.matches()) {
              return code(m);
            }
          }
        }
      }
    } catch (java.io.IOException e) {
      // unreadable: version unknown
    }
    return -1;
  }

  private static long code(java.util.regex.Matcher m) {
    return Long.parseLong(m.group(1)) * 10000
        + Long.parseLong(m.group(2)) * 100
        + Long.parseLong(m.group(3));
  }

  Cudnn(Path library, long stream) {
    this.library = library;
    Linker linker = Linker.nativeLinker();
    Path dir = library.toAbsolutePath().getParent();
    for (String sub : SUB_LIBRARIES) {
      Path p = dir.resolve(sub);
      if (Files.isRegularFile(p)) {
        try {
          SymbolLookup.libraryLookup(p, LIBRARIES); // loaded once, found by soname afterwards
        } catch (IllegalArgumentException e) {
          // an engine library that cannot load here only narrows the engines cuDNN offers
        }
      }
    }
    SymbolLookup lib = SymbolLookup.libraryLookup(library, LIBRARIES);
    MethodHandle getVersion = bind(linker, lib, "cudnnGetVersion", FunctionDescriptor.of(PTR));
    MethodHandle createHandle =
        bind(linker, lib, "cudnnCreate", FunctionDescriptor.of(INT, ValueLayout.ADDRESS));
    MethodHandle setStream =
        bind(linker, lib, "cudnnSetStream", FunctionDescriptor.of(INT, PTR, PTR));
    destroyHandle = bind(linker, lib, "cudnnDestroy", FunctionDescriptor.of(INT, PTR));
    errorString =
        bind(linker, lib, "cudnnGetErrorString", FunctionDescriptor.of(ValueLayout.ADDRESS, INT));
    lastError =
        bind(
            linker,
            lib,
            "cudnnGetLastErrorString",
            FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
    create =
        bind(
            linker,
            lib,
            "cudnnBackendCreateDescriptor",
            FunctionDescriptor.of(INT, INT, ValueLayout.ADDRESS));
    destroyDesc =
        bind(linker, lib, "cudnnBackendDestroyDescriptor", FunctionDescriptor.of(INT, PTR));
    setAttr =
        bind(
            linker,
            lib,
            "cudnnBackendSetAttribute",
            FunctionDescriptor.of(INT, PTR, INT, INT, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS));
    getAttr =
        bind(
            linker,
            lib,
            "cudnnBackendGetAttribute",
            FunctionDescriptor.of(
                INT,
                PTR,
                INT,
                INT,
                ValueLayout.JAVA_LONG,
                ValueLayout.ADDRESS,
                ValueLayout.ADDRESS));
    finalizeDesc = bind(linker, lib, "cudnnBackendFinalize", FunctionDescriptor.of(INT, PTR));
    execute = bind(linker, lib, "cudnnBackendExecute", FunctionDescriptor.of(INT, PTR, PTR, PTR));
    try {
      version = (long) getVersion.invokeExact();
    } catch (Throwable t) {
      throw new CudaException("cudnnGetVersion failed: " + t);
    }
    if (version < MIN_VERSION) {
      throw new CudaException(
          library
              + " is cuDNN "
              + version
              + "; moetune's fused attention needs "
              + MIN_VERSION
              + " or newer (pip install nvidia-cudnn-cu13, or set MOETUNE_CUDNN)");
    }
    MemorySegment h = arena.allocate(ValueLayout.JAVA_LONG);
    check(call(createHandle, h), "cudnnCreate", "");
    handle = h.get(ValueLayout.JAVA_LONG, 0);
    check(call(setStream, handle, stream), "cudnnSetStream", "");
  }

  Path library() {
    return library;
  }

  /** CUDNN_VERSION of the loaded library, e.g. 91900 for 9.19.0. */
  long version() {
    return version;
  }

  long handle() {
    return handle;
  }

  /** A new descriptor of {@code type}; the caller destroys it ({@link Graph} does). */
  long create(int type, String what) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment d = a.allocate(ValueLayout.JAVA_LONG);
      int st;
      try {
        st = (int) create.invokeExact(type, d);
      } catch (Throwable t) {
        throw failed(t);
      }
      check(st, "cudnnBackendCreateDescriptor", what);
      return d.get(ValueLayout.JAVA_LONG, 0);
    }
  }

  void destroy(long desc) {
    try {
      int st = (int) destroyDesc.invokeExact(desc);
    } catch (Throwable t) {
      throw failed(t);
    }
  }

  void set(long desc, int name, int type, long count, MemorySegment values, String what) {
    int st;
    try {
      st = (int) setAttr.invokeExact(desc, name, type, count, values);
    } catch (Throwable t) {
      throw failed(t);
    }
    check(st, "cudnnBackendSetAttribute", what);
  }

  /** cudnnBackendFinalize; returns the status (0 = success) without throwing. */
  int tryFinalize(long desc) {
    try {
      return (int) finalizeDesc.invokeExact(desc);
    } catch (Throwable t) {
      throw failed(t);
    }
  }

  void finalize(long desc, String what) {
    check(tryFinalize(desc), "cudnnBackendFinalize", what);
  }

  /** Reads up to {@code capacity} elements of an attribute into {@code out}; returns the count. */
  long get(long desc, int name, int type, long capacity, MemorySegment out, String what) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment n = a.allocate(ValueLayout.JAVA_LONG);
      // a local, not a conditional expression: invokeExact takes each argument's static type, and
      // a conditional argument is typed Object
      MemorySegment values = out == null ? MemorySegment.NULL : out;
      int st;
      try {
        st = (int) getAttr.invokeExact(desc, name, type, capacity, n, values);
      } catch (Throwable t) {
        throw failed(t);
      }
      check(st, "cudnnBackendGetAttribute", what);
      return n.get(ValueLayout.JAVA_LONG, 0);
    }
  }

  /** cudnnBackendExecute through an exact-typed handle: no boxing, no allocation. */
  void execute(long plan, long variantPack, String what) {
    int st;
    try {
      st = (int) execute.invokeExact(handle, plan, variantPack);
    } catch (Throwable t) {
      throw failed(t);
    }
    if (st != 0) {
      check(st, "cudnnBackendExecute", what);
    }
  }

  /** cuDNN's status name and its last error message (what it refused and why). */
  String describe(int status) {
    String name;
    try {
      MemorySegment s = (MemorySegment) errorString.invokeExact(status);
      name = s.reinterpret(256).getString(0);
    } catch (Throwable t) {
      name = "status " + status;
    }
    try (Arena a = Arena.ofConfined()) {
      MemorySegment buf = a.allocate(2048);
      lastError.invokeExact(buf, 2048L);
      String msg = buf.getString(0).strip();
      return msg.isEmpty() ? name : name + ": " + msg;
    } catch (Throwable t) {
      return name;
    }
  }

  private void check(int status, String call, String what) {
    if (status != 0) {
      throw new CudaException(call, status, describe(status), what);
    }
  }

  private static CudaException failed(Throwable t) {
    if (t instanceof CudaException c) {
      return c;
    }
    return new CudaException("cuDNN call failed: " + t);
  }

  private static int call(MethodHandle h, Object... args) {
    try {
      return (int) h.invokeWithArguments(args);
    } catch (RuntimeException e) {
      throw e;
    } catch (Throwable t) {
      throw new CudaException("cuDNN call failed: " + t);
    }
  }

  private static MethodHandle bind(
      Linker linker, SymbolLookup lib, String name, FunctionDescriptor fd) {
    return linker.downcallHandle(
        lib.find(name)
            .orElseThrow(() -> new CudaException("cuDNN library lacks " + name + "; need cuDNN 9")),
        fd);
  }

  @Override
  public void close() {
    call(destroyHandle, handle);
    arena.close();
  }

  /** Variant packs kept per graph before the oldest set is dropped (all of them, then rebuilt). */
  static final int MAX_PACKS = 256;

  /**
   * A variant pack's pointers and workspace as a map key; one mutable instance per graph probes the
   * map so a lookup allocates nothing.
   */
  private static final class PointerSet {
    private long[] pointers;
    private long workspace;
    private int hash;

    PointerSet(long[] pointers, long workspace) {
      if (pointers != null) set(pointers, workspace);
    }

    void set(long[] p, long w) {
      pointers = p;
      workspace = w;
      hash = java.util.Arrays.hashCode(p) * 31 + Long.hashCode(w);
    }

    @Override
    public int hashCode() {
      return hash;
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof PointerSet s
          && s.workspace == workspace
          && java.util.Arrays.equals(s.pointers, pointers);
    }
  }

  /**
   * The descriptors of one operation graph and its plan, destroyed together. Tensors get unique
   * ids: the graph's real tensors their caller's ids (the variant pack names them), virtual ones
   * ids from 1000 up.
   */
  final class Graph implements AutoCloseable {
    private final Arena mem = Arena.ofShared();
    private final List<Long> owned = new ArrayList<>();
    private final List<Long> ops = new ArrayList<>();
    private long nextVirtual = 1000;
    private long[] packUids;
    private final java.util.Map<PointerSet, Long> packs = new java.util.HashMap<>();
    private final PointerSet probe = new PointerSet(null, 0);
    private long plan;
    private long workspace;
    private String engine = "";

    private long make(int type, String what) {
      long d = create(type, what);
      owned.add(d);
      return d;
    }

    private MemorySegment longs(long... v) {
      MemorySegment s = mem.allocate(ValueLayout.JAVA_LONG, v.length);
      for (int i = 0; i < v.length; i++) s.setAtIndex(ValueLayout.JAVA_LONG, i, v[i]);
      return s;
    }

    private MemorySegment ints(int v) {
      MemorySegment s = mem.allocate(ValueLayout.JAVA_INT);
      s.set(ValueLayout.JAVA_INT, 0, v);
      return s;
    }

    private MemorySegment bool(boolean v) {
      MemorySegment s = mem.allocate(1);
      s.set(ValueLayout.JAVA_BOOLEAN, 0, v);
      return s;
    }

    private MemorySegment floats(float v) {
      MemorySegment s = mem.allocate(ValueLayout.JAVA_FLOAT);
      s.set(ValueLayout.JAVA_FLOAT, 0, v);
      return s;
    }

    /** A real (variant-pack) tensor. */
    long tensor(long uid, int dataType, long[] dims, long[] strides) {
      return tensor(uid, dataType, dims, strides, false, false, 0);
    }

    /**
     * A real tensor whose batch n starts at element {@code offsets[n]} (a ragged tensor: packed
     * variable-length sequences) rather than at n * strides[0]; {@code raggedOffsets} is the (batch
     * + 1) INT64 tensor of those offsets, or 0 for a plain tensor.
     */
    long tensor(long uid, int dataType, long[] dims, long[] strides, long raggedOffsets) {
      return tensor(uid, dataType, dims, strides, false, false, raggedOffsets);
    }

    /** A virtual tensor that is ragged like {@code raggedOffsets} says (a reshape of one). */
    long virt(int dataType, long[] dims, long[] strides, long raggedOffsets) {
      return tensor(nextVirtual++, dataType, dims, strides, true, false, raggedOffsets);
    }

    /** A virtual (fused, never in memory) tensor. */
    long virt(int dataType, long[] dims, long[] strides) {
      return tensor(nextVirtual++, dataType, dims, strides, true, false, 0);
    }

    /** A float scalar passed by value (its host pointer goes in the variant pack). */
    long scalar(long uid) {
      return tensor(uid, FLOAT, new long[] {1, 1, 1, 1}, new long[] {1, 1, 1, 1}, false, true, 0);
    }

    private long tensor(
        long uid,
        int dataType,
        long[] dims,
        long[] strides,
        boolean isVirtual,
        boolean byValue,
        long raggedOffsets) {
      String what = "tensor " + uid;
      long d = make(TENSOR, what);
      set(d, A_T_DATA_TYPE, T_DATA_TYPE, 1, ints(dataType), what);
      set(d, A_T_DIMS, T_INT64, dims.length, longs(dims), what);
      set(d, A_T_STRIDES, T_INT64, strides.length, longs(strides), what);
      set(d, A_T_UID, T_INT64, 1, longs(uid), what);
      set(d, A_T_ALIGNMENT, T_INT64, 1, longs(16), what);
      if (isVirtual) set(d, A_T_VIRTUAL, T_BOOLEAN, 1, bool(true), what);
      if (byValue) set(d, A_T_BY_VALUE, T_BOOLEAN, 1, bool(true), what);
      if (raggedOffsets != 0)
        set(d, A_T_RAGGED_OFFSET, T_DESCRIPTOR, 1, longs(raggedOffsets), what);
      Cudnn.this.finalize(d, what);
      return d;
    }

    /** y = mode(x[, b][, t]) computed in {@code precision}; axis for GEN_INDEX. */
    void pointwise(int mode, long x, long b, long t, long y, int precision, long axis) {
      String what = "pointwise mode " + mode;
      long pw = make(POINTWISE, what);
      set(pw, A_PW_MODE, T_POINTWISE_MODE, 1, ints(mode), what);
      set(pw, A_PW_MATH_PREC, T_DATA_TYPE, 1, ints(precision), what);
      if (mode == PW_GEN_INDEX) set(pw, A_PW_AXIS, T_INT64, 1, longs(axis), what);
      Cudnn.this.finalize(pw, what);
      long op = make(OP_POINTWISE, what);
      set(op, A_OP_PW_DESC, T_DESCRIPTOR, 1, longs(pw), what);
      set(op, A_OP_PW_X, T_DESCRIPTOR, 1, longs(x), what);
      if (b != 0) set(op, A_OP_PW_B, T_DESCRIPTOR, 1, longs(b), what);
      if (t != 0) set(op, A_OP_PW_T, T_DESCRIPTOR, 1, longs(t), what);
      set(op, A_OP_PW_Y, T_DESCRIPTOR, 1, longs(y), what);
      set(op, A_OP_PW_ALPHA1, T_FLOAT, 1, floats(1f), what);
      if (b != 0) set(op, A_OP_PW_ALPHA2, T_FLOAT, 1, floats(1f), what);
      Cudnn.this.finalize(op, what);
      ops.add(op);
    }

    void pointwise(int mode, long x, long b, long y) {
      pointwise(mode, x, b, 0, y, FLOAT, -1);
    }

    void reduction(int mode, long x, long y) {
      String what = "reduction " + mode;
      long r = make(REDUCTION, what);
      set(r, A_RED_COMP_TYPE, T_DATA_TYPE, 1, ints(FLOAT), what);
      set(r, A_RED_OPERATOR, T_REDUCTION_OP, 1, ints(mode), what);
      Cudnn.this.finalize(r, what);
      long op = make(OP_REDUCTION, what);
      set(op, A_OP_RED_DESC, T_DESCRIPTOR, 1, longs(r), what);
      set(op, A_OP_RED_X, T_DESCRIPTOR, 1, longs(x), what);
      set(op, A_OP_RED_Y, T_DESCRIPTOR, 1, longs(y), what);
      Cudnn.this.finalize(op, what);
      ops.add(op);
    }

    void matmul(long a, long b, long c) {
      matmul(a, b, c, 0, 0, 0, false);
    }

    /**
     * c = a b with the per-batch row count (M), column count (N) or contraction length (K) read
     * from INT32 (batch) tensors when given (nonzero): the sequence lengths of a padded or ragged
     * batch; {@code padded}: the padding value 0 for the rows and columns beyond them.
     */
    void matmul(
        long a, long b, long c, long mOverride, long nOverride, long kOverride, boolean padded) {
      String what = "matmul";
      long m = make(MATMUL, what);
      set(m, A_MM_COMP_TYPE, T_DATA_TYPE, 1, ints(FLOAT), what);
      if (padded) {
        MemorySegment zero = mem.allocate(ValueLayout.JAVA_DOUBLE);
        zero.set(ValueLayout.JAVA_DOUBLE, 0, 0.0);
        set(m, A_MM_PADDING_VALUE, T_DOUBLE, 1, zero, what);
      }
      Cudnn.this.finalize(m, what);
      long op = make(OP_MATMUL, what);
      set(op, A_OP_MM_A, T_DESCRIPTOR, 1, longs(a), what);
      set(op, A_OP_MM_B, T_DESCRIPTOR, 1, longs(b), what);
      set(op, A_OP_MM_C, T_DESCRIPTOR, 1, longs(c), what);
      set(op, A_OP_MM_DESC, T_DESCRIPTOR, 1, longs(m), what);
      if (mOverride != 0) set(op, A_OP_MM_M_OVERRIDE, T_DESCRIPTOR, 1, longs(mOverride), what);
      if (nOverride != 0) set(op, A_OP_MM_N_OVERRIDE, T_DESCRIPTOR, 1, longs(nOverride), what);
      if (kOverride != 0) set(op, A_OP_MM_K_OVERRIDE, T_DESCRIPTOR, 1, longs(kOverride), what);
      Cudnn.this.finalize(op, what);
      ops.add(op);
    }

    void reshape(long x, long y) {
      String what = "reshape";
      long op = make(OP_RESHAPE, what);
      set(op, A_OP_RESHAPE_X, T_DESCRIPTOR, 1, longs(x), what);
      set(op, A_OP_RESHAPE_Y, T_DESCRIPTOR, 1, longs(y), what);
      Cudnn.this.finalize(op, what);
      ops.add(op);
    }

    /**
     * Finalizes the graph and picks its plan: the first engine configuration of heuristics mode A
     * that finalizes, else of the fallback list. Throws with cuDNN's own words when none does.
     */
    void build(String what) {
      long og = make(OPERATION_GRAPH, what);
      set(og, A_GRAPH_HANDLE, T_HANDLE, 1, longs(handle), what);
      long[] opArray = ops.stream().mapToLong(Long::longValue).toArray();
      set(og, A_GRAPH_OPS, T_DESCRIPTOR, opArray.length, longs(opArray), what);
      Cudnn.this.finalize(og, what + " operation graph");
      StringBuilder refused = new StringBuilder();
      for (int mode : new int[] {HEUR_A, HEUR_FALLBACK}) {
        long heur = make(ENGINEHEUR, what);
        set(heur, A_HEUR_GRAPH, T_DESCRIPTOR, 1, longs(og), what);
        set(heur, A_HEUR_MODE, T_HEUR_MODE, 1, ints(mode), what);
        int st = tryFinalize(heur);
        if (st != 0) {
          refused.append(" heuristics mode ").append(mode).append(": ").append(describe(st));
          continue;
        }
        long count = get(heur, A_HEUR_RESULTS, T_DESCRIPTOR, 0, null, what);
        if (count == 0) continue;
        long[] cfgs = new long[(int) count];
        for (int i = 0; i < cfgs.length; i++) cfgs[i] = make(ENGINECFG, what);
        MemorySegment arr = longs(cfgs);
        long got = get(heur, A_HEUR_RESULTS, T_DESCRIPTOR, count, arr, what);
        for (int i = 0; i < got; i++) {
          long p = make(EXECUTION_PLAN, what);
          set(p, A_PLAN_HANDLE, T_HANDLE, 1, longs(handle), what);
          set(p, A_PLAN_ENGINE_CONFIG, T_DESCRIPTOR, 1, longs(cfgs[i]), what);
          int fst = tryFinalize(p);
          if (fst != 0) {
            if (refused.length() < 600)
              refused.append(" config ").append(i).append(": ").append(describe(fst));
            continue;
          }
          MemorySegment ws = mem.allocate(ValueLayout.JAVA_LONG);
          get(p, A_PLAN_WORKSPACE, T_INT64, 1, ws, what);
          plan = p;
          workspace = ws.get(ValueLayout.JAVA_LONG, 0);
          MemorySegment json = mem.allocate(4096);
          try {
            long n = get(p, A_PLAN_JSON, T_CHAR, 4095, json, what);
            engine = json.getString(0);
            if (n <= 0) engine = "";
          } catch (CudaException e) {
            engine = "";
          }
          return;
        }
      }
      throw new CudaException(
          "cuDNN " + version + " has no engine for the " + what + " graph:" + refused);
    }

    /** Bytes of device workspace the plan needs. */
    long workspace() {
      return workspace;
    }

    /** The plan's engine as cuDNN describes it (JSON), for the run log. */
    String engine() {
      return engine;
    }

    /**
     * Runs the plan: {@code uids[i]} bound to {@code pointers[i]} (device addresses, or host
     * addresses of by-value scalars), workspace at {@code workspaceAddress}. The finalized variant
     * pack of each pointer set is kept (up to {@link #MAX_PACKS}; a training step reuses its
     * buffers' addresses), so a repeated call is one lookup and cudnnBackendExecute. The uids must
     * be the same on every call of one graph.
     */
    void execute(long[] uids, long[] pointers, long workspaceAddress, String what) {
      if (packUids == null) {
        packUids = uids.clone();
      } else if (!java.util.Arrays.equals(packUids, uids)) {
        throw new IllegalArgumentException(what + ": variant pack uids changed between calls");
      }
      probe.set(pointers, workspaceAddress);
      Long vp = packs.get(probe);
      if (vp == null) {
        vp = variantPack(pointers, workspaceAddress, what);
      }
      Cudnn.this.execute(plan, vp, what);
    }

    private long variantPack(long[] pointers, long workspaceAddress, String what) {
      if (packs.size() >= MAX_PACKS) {
        dropPacks();
      }
      long vp = create(VARIANT_PACK, what);
      try (Arena a = Arena.ofConfined()) {
        MemorySegment u = a.allocate(ValueLayout.JAVA_LONG, packUids.length);
        MemorySegment p = a.allocate(ValueLayout.JAVA_LONG, pointers.length);
        for (int i = 0; i < packUids.length; i++) {
          u.setAtIndex(ValueLayout.JAVA_LONG, i, packUids[i]);
          p.setAtIndex(ValueLayout.JAVA_LONG, i, pointers[i]);
        }
        MemorySegment w = a.allocate(ValueLayout.JAVA_LONG);
        w.set(ValueLayout.JAVA_LONG, 0, workspaceAddress);
        set(vp, A_VP_UIDS, T_INT64, packUids.length, u, what);
        set(vp, A_VP_POINTERS, T_VOID_PTR, pointers.length, p, what);
        set(vp, A_VP_WORKSPACE, T_VOID_PTR, 1, w, what);
        Cudnn.this.finalize(vp, what + " variant pack");
      } catch (RuntimeException e) {
        destroy(vp);
        throw e;
      }
      packs.put(new PointerSet(pointers.clone(), workspaceAddress), vp);
      return vp;
    }

    /** Variant packs kept now (tests). */
    int variantPacks() {
      return packs.size();
    }

    private void dropPacks() {
      for (long vp : packs.values()) destroy(vp);
      packs.clear();
    }

    /** A host float the plan reads by value; lives as long as the graph. */
    long hostFloat(float v) {
      return floats(v).address();
    }

    @Override
    public void close() {
      dropPacks();
      for (int i = owned.size() - 1; i >= 0; i--) destroy(owned.get(i));
      owned.clear();
      mem.close();
    }
  }
}
