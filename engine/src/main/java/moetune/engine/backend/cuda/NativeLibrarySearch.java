package moetune.engine.backend.cuda;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Where the NVIDIA libraries moetune binds with FFM (cuBLAS, cuDNN, NCCL) are looked for, in one
 * order for all of them: an explicit override variable, the library's own home variable, {@code
 * LD_LIBRARY_PATH}, {@code CUDA_HOME}, the CUDA toolkits under /usr/local and /opt, the system
 * library folders, and last (a walk, so slower) Python's pip wheels ({@code nvidia/.../lib}, as
 * PyTorch installs them). The environment and folders are parameters so the search and its message
 * are testable.
 *
 * @param what the library as users know it, for messages ("cuDNN 9")
 * @param fileNames the file names tried in order of preference ("libcudnn.so.9")
 * @param overrideVar a variable naming the file itself (MOETUNE_CUDNN)
 * @param homeVar the library's home variable whose lib/lib64 is searched (CUDNN_HOME), or null
 * @param wheelDirs pip wheel folders that hold the library ("nvidia/cudnn/lib")
 * @param install how to install it, ending the not-found message
 */
record NativeLibrarySearch(
    String what,
    List<String> fileNames,
    String overrideVar,
    String homeVar,
    List<String> wheelDirs,
    String install) {

  static final List<Path> SYSTEM_DIRS =
      List.of(
          Path.of("/usr/lib/x86_64-linux-gnu"),
          Path.of("/usr/lib64"),
          Path.of("/usr/lib"),
          Path.of("/lib/x86_64-linux-gnu"));

  static final List<Path> WHEEL_ROOTS =
      List.of(Path.of("/usr/local/lib"), Path.of("/usr/lib"), Path.of("/opt"));

  static final List<Path> TOOLKIT_ROOTS = List.of(Path.of("/usr/local"), Path.of("/opt"));

  /** Searches the real environment and folders. */
  Path find() {
    return find(System.getenv(), TOOLKIT_ROOTS, SYSTEM_DIRS, WHEEL_ROOTS);
  }

  /** The file, or a {@link CudaException} whose one line says where it looked and how to fix it. */
  Path find(
      Map<String, String> env,
      List<Path> toolkitRoots,
      List<Path> systemDirs,
      List<Path> wheelRoots) {
    List<Path> all = candidates(env, toolkitRoots, systemDirs, wheelRoots, true);
    if (!all.isEmpty()) {
      return all.get(0);
    }
    throw notFound();
  }

  /**
   * Every copy of the library in search order (the override alone when it is set). {@code
   * firstOnly}: stop at the first, skipping the slower wheel walk when the usual places have one.
   */
  List<Path> candidates(
      Map<String, String> env,
      List<Path> toolkitRoots,
      List<Path> systemDirs,
      List<Path> wheelRoots,
      boolean firstOnly) {
    String override = env.get(overrideVar);
    if (override != null && !override.isBlank()) {
      Path p = Path.of(override);
      if (!Files.isRegularFile(p)) {
        throw new CudaException(
            overrideVar + "=" + override + " is not a file; point it at " + fileNames.get(0));
      }
      return List.of(p);
    }
    List<Path> dirs = new ArrayList<>();
    String home = homeVar == null ? null : env.get(homeVar);
    if (home != null && !home.isBlank()) {
      dirs.add(Path.of(home, "lib"));
      dirs.add(Path.of(home, "lib64"));
    }
    String ld = env.get("LD_LIBRARY_PATH");
    if (ld != null) {
      for (String d : ld.split(":")) {
        if (!d.isBlank()) dirs.add(Path.of(d));
      }
    }
    String cudaHome = env.get("CUDA_HOME");
    if (cudaHome != null && !cudaHome.isBlank()) {
      dirs.add(Path.of(cudaHome, "lib64"));
      dirs.add(Path.of(cudaHome, "targets/x86_64-linux/lib"));
    }
    for (Path root : toolkitRoots) {
      try (Stream<Path> s = Files.list(root)) {
        s.filter(p -> p.getFileName().toString().startsWith("cuda"))
            .sorted()
            .forEach(
                p -> {
                  dirs.add(p.resolve("lib64"));
                  dirs.add(p.resolve("targets/x86_64-linux/lib"));
                });
      } catch (Exception e) {
        // a missing root folder contributes nothing
      }
    }
    dirs.addAll(systemDirs);
    List<Path> found = new ArrayList<>(allIn(dirs));
    if (found.isEmpty() || !firstOnly) {
      List<Path> wheels = new ArrayList<>();
      for (Path root : wheelRoots) {
        try (Stream<Path> s = Files.walk(root, 8)) {
          s.filter(p -> wheelDirs.stream().anyMatch(p::endsWith)).sorted().forEach(wheels::add);
        } catch (Exception e) {
          // unreadable or missing: nothing to add
        }
      }
      for (Path p : allIn(wheels)) {
        if (!found.contains(p)) found.add(p);
      }
    }
    return firstOnly && found.size() > 1 ? List.of(found.get(0)) : found;
  }

  /** The one-line message for a library found nowhere. */
  CudaException notFound() {
    return new CudaException(
        "no "
            + String.join(" or ", fileNames)
            + " found (looked in "
            + (homeVar == null ? "" : homeVar + ", ")
            + "LD_LIBRARY_PATH, CUDA_HOME, /usr/local/cuda*, the system library folders and Python's "
            + String.join(" / ", wheelDirs)
            + " wheels); "
            + install
            + " or set "
            + overrideVar
            + "=/path/to/"
            + fileNames.get(0));
  }

  /** Existing files in preference order: each name over all folders before the next name. */
  private List<Path> allIn(List<Path> dirs) {
    List<Path> out = new ArrayList<>();
    for (String name : fileNames) {
      for (Path d : dirs) {
        Path p = d.resolve(name);
        if (Files.isRegularFile(p) && !out.contains(p)) {
          out.add(p);
        }
      }
    }
    return out;
  }
}
