package moetune.app.gui.model;

import java.util.List;

/** One CUDA device as the driver reports it. */
public record GpuInfo(int index, String name, long totalBytes, long freeBytes) {

  /** The devices found, or none and the reason (no driver, no device, kernels not built). */
  public record Report(List<GpuInfo> found, String whyNone) {
    public Report {
      found = List.copyOf(found);
    }
  }
}
