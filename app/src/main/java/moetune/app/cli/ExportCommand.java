package moetune.app.cli;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import moetune.app.config.ConfigException;
import moetune.app.run.Exporter;
import moetune.engine.io.SafetensorsWriter;
import moetune.engine.tensor.DType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code moetune export}: a checkpoint as a HuggingFace model directory. */
@Command(
    name = "export",
    mixinStandardHelpOptions = true,
    description = {
      "Export a checkpoint as a HuggingFace model directory that",
      "transformers.AutoModelForCausalLM.from_pretrained loads (hub per-expert layout).",
      "A LoRA run's checkpoint exports merged (adapters folded into the weights), or with",
      "--adapter as a PEFT adapter directory for peft.PeftModel.from_pretrained."
    })
public final class ExportCommand implements Callable<Integer> {
  @Option(
      names = "--checkpoint",
      required = true,
      paramLabel = "DIR",
      description =
          "a train run's --out (its latest checkpoint), a checkpoint, or a model directory")
  Path checkpoint;

  @Option(
      names = "--out",
      required = true,
      paramLabel = "DIR",
      description = "the new model directory")
  Path out;

  @Option(
      names = "--overwrite",
      description =
          "replace an earlier export in --out (its model files; other files there are kept)")
  boolean overwrite;

  @Option(
      names = "--dtype",
      paramLabel = "bf16|fp16|fp32",
      defaultValue = "fp32",
      description = "weight dtype (default: ${DEFAULT-VALUE}, the checkpoint's own precision)")
  String dtype;

  @Option(
      names = "--shard-size",
      paramLabel = "SIZE",
      defaultValue = "5GB",
      description =
          "largest safetensors shard, as HuggingFace's max_shard_size (default: ${DEFAULT-VALUE})")
  String shardSize;

  @Option(
      names = "--write-reference-logits",
      paramLabel = "FILE",
      description =
          "also write moetune's logits of fixed token ids (safetensors) for tools/check_export.py")
  Path referenceLogits;

  @Option(
      names = "--adapter",
      description =
          "write the LoRA adapter (adapter_config.json, adapter_model.safetensors, PEFT's format)"
              + " instead of merged full weights")
  boolean adapter;

  @Override
  public Integer call() {
    try {
      if (adapter) {
        Path from = Exporter.modelDir(checkpoint, "--checkpoint");
        Exporter.exportAdapter(from, out);
        System.out.println("exported the LoRA adapter of " + from + " -> " + out);
        if (referenceLogits != null) {
          Exporter.writeReferenceLogits(from, referenceLogits, 2, 16, 1234);
          System.out.println(
              "reference logits of base + adapter (moetune, CPU fp32) -> " + referenceLogits);
          System.out.println(
              "check with:  python tools/check_peft.py BASE_DIR "
                  + out
                  + " MERGED_EXPORT "
                  + referenceLogits);
        }
        return 0;
      }
      DType d = parseDtype(dtype);
      long shard;
      try {
        shard = SafetensorsWriter.parseSize(shardSize);
      } catch (IllegalArgumentException e) {
        throw new ConfigException("--shard-size: " + e.getMessage());
      }
      Path from = Exporter.modelDir(checkpoint, "--checkpoint");
      Exporter.export(from, out, d, shard, overwrite, f -> {});
      System.out.println("exported " + from + " -> " + out + " (" + dtype + ")");
      if (referenceLogits != null) {
        Exporter.writeReferenceLogits(out, referenceLogits, 2, 16, 1234);
        System.out.println(
            "reference logits of the export (moetune, CPU fp32) -> " + referenceLogits);
        System.out.println(
            "check with:  python tools/check_export.py " + out + " " + referenceLogits);
      }
      return 0;
    } catch (Exception e) {
      return CliErrors.report("export", e, System.err);
    }
  }

  static DType parseDtype(String s) {
    DType d;
    try {
      d = DType.parse(s);
    } catch (IllegalArgumentException e) {
      throw new ConfigException("--dtype: '" + s + "' is not one of bf16, fp16, fp32");
    }
    if (!d.isFloating()) {
      throw new ConfigException("--dtype: '" + s + "' is not one of bf16, fp16, fp32");
    }
    return d;
  }
}
