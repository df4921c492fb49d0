package moetune.app.gui.model;

/** One CUDA device as the backend reports it. */
public record GpuInfo(int index, String name, long totalBytes, long freeBytes) {}
