package moetune.app.gui.model;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import moetune.datasets.ByteTokenizerFiles;
import moetune.engine.backend.cuda.CudaDevices;
import moetune.engine.backend.cuda.CudaProbe;
import moetune.engine.hf.MixtralConfig;
import moetune.engine.io.MixtralCheckpoint;

/**
 * {@link ModelInspector} on the engine: {@link MixtralConfig} for the architecture and, for a
 * checkpoint directory, {@link MixtralCheckpoint}'s tensor table for the true parameter count and
 * stored dtype (no weights are read: the safetensors are memory-mapped headers only).
 */
public final class EngineModelInspector implements ModelInspector {

  @Override
  public ModelFacts inspectDirectory(Path dir) {
    try (MixtralCheckpoint ckpt = MixtralCheckpoint.load(dir)) {
      long total = 0;
      for (String name : ckpt.names()) {
        long n = 1;
        for (long s : ckpt.shape(name)) {
          n *= s;
        }
        total += n;
      }
      String dtype = ckpt.names().isEmpty() ? "-" : ckpt.storedType(ckpt.names().get(0)).toString();
      return facts(dir.toString(), ckpt.config(), dtype, total);
    }
  }

  @Override
  public ModelFacts inspectNewConfig(Path configJson) {
    MixtralConfig c = MixtralConfig.load(configJson);
    return facts(
        configJson.toString(), c, c.dtype == null ? "float32" : c.dtype, parameterCount(c));
  }

  private Path byteTokenizer;

  /** Written once per app run into a temp folder; the files are small and deterministic. */
  @Override
  public synchronized Path newModelTokenizer() throws IOException {
    if (byteTokenizer == null) {
      Path dir = Files.createTempDirectory("moetune-byte-tokenizer");
      ByteTokenizerFiles.write(dir);
      try (var files = Files.list(dir)) {
        files.forEach(f -> f.toFile().deleteOnExit());
      }
      dir.toFile().deleteOnExit();
      byteTokenizer = dir;
    }
    return byteTokenizer;
  }

  @Override
  public GpuInfo.Report gpus() {
    // through the engine's backend code, which checks every driver call in one place and leaves
    // JCuda's global exceptions flag as the backend needs it (off)
    String why = CudaProbe.unavailableReason(0);
    if (why != null) {
      return new GpuInfo.Report(List.of(), why);
    }
    List<GpuInfo> out = new ArrayList<>();
    for (CudaDevices.Device d : CudaDevices.list()) {
      out.add(new GpuInfo(d.index(), d.name(), d.totalBytes(), d.freeBytes()));
    }
    return new GpuInfo.Report(out, out.isEmpty() ? "no CUDA device was found" : null);
  }

  /**
   * Parameters a model with config {@code c} holds, counted per tensor as the checkpoint lays them
   * out: embed (V, D); per layer two RMSNorms (D), q (H*hd, D), k and v (Hkv*hd, D), o (D, H*hd),
   * router (E, D), E experts of w1, w3 (F, D) and w2 (D, F); final norm (D); lm_head (V, D) unless
   * tied.
   */
  static long parameterCount(MixtralConfig c) {
    long d = c.hiddenSize;
    long hd = c.headDim();
    long perLayer =
        2 * d
            + d * c.numAttentionHeads * hd * 2
            + 2 * d * c.numKeyValueHeads * hd
            + (long) c.numLocalExperts * d
            + (long) c.numLocalExperts * 3 * d * c.intermediateSize;
    long embed = (long) c.vocabSize * d;
    return embed + (c.tieWordEmbeddings ? 0 : embed) + d + c.numHiddenLayers * perLayer;
  }

  /** Active per token: everything except the experts a token's router did not pick. */
  static long activeCount(MixtralConfig c, long total) {
    long perExpert = 3L * c.hiddenSize * c.intermediateSize;
    return total - (long) c.numHiddenLayers * (c.numLocalExperts - c.numExpertsPerTok) * perExpert;
  }

  private static ModelFacts facts(String source, MixtralConfig c, String dtype, long total) {
    return new ModelFacts(
        source,
        c.vocabSize,
        c.hiddenSize,
        c.intermediateSize,
        c.numHiddenLayers,
        c.numAttentionHeads,
        c.numKeyValueHeads,
        c.headDim(),
        c.numLocalExperts,
        c.numExpertsPerTok,
        c.maxPositionEmbeddings,
        dtype,
        total,
        activeCount(c, total));
  }
}
