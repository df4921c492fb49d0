package moetune.engine.optim;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import moetune.engine.backend.AdamWCoefficients;
import moetune.engine.backend.Backend;
import moetune.engine.model.Parameters;
import moetune.engine.tensor.DType;
import moetune.engine.tensor.HostTensor;
import moetune.engine.tensor.Tensor;

/**
 * torch.optim.AdamW (decoupled weight decay, bias-corrected moments) over a model's flat float32
 * parameters, with torch.nn.utils.clip_grad_norm_'s global gradient clipping first.
 *
 * <p>Weight decay is chosen per parameter by a predicate; the parameters are visited as runs of
 * adjacent tensors with the same choice, so a step is a few large {@link Backend#adamwStep} calls.
 * In a low-precision mode each call also refreshes the working copy.
 *
 * <p>State: the first and second moments (F32, the parameters' layout) and the step count, exposed
 * for checkpointing through {@link #stateToHost()} and {@link #loadState}.
 */
public final class AdamW implements Optimizer {

  /**
   * Hyperparameters. maxGradNorm <= 0 turns clipping off (the norm is still measured). The learning
   * rate is not one of them: each {@link #step(float)} is given the schedule's value.
   */
  public record Settings(
      float beta1, float beta2, float eps, float weightDecay, float maxGradNorm) {
    public Settings {
      if (!(beta1 >= 0 && beta1 < 1)
          || !(beta2 >= 0 && beta2 < 1)
          || !(eps > 0)
          || !(weightDecay >= 0)) {
        throw new IllegalArgumentException(
            "AdamW: need 0 <= betas < 1, eps > 0, weight_decay >= 0; got betas=("
                + beta1
                + ", "
                + beta2
                + ") eps="
                + eps
                + " weight_decay="
                + weightDecay);
      }
    }

    /**
     * torch's AdamW defaults (betas (0.9, 0.999), eps 1e-8, weight decay 0.01), clipping at 1.0.
     */
    public static Settings defaults() {
      return new Settings(0.9f, 0.999f, 1e-8f, 0.01f, 1.0f);
    }
  }

  /** Weight decay on every parameter (torch's behaviour when given model.parameters()). */
  public static final Predicate<Parameters.Slice> DECAY_ALL = s -> true;

  /** Weight decay on matrices only, none on the 1-D norm weights (the usual LLM recipe). */
  public static final Predicate<Parameters.Slice> DECAY_MATRICES = s -> !s.isVector();

  private final Parameters params;
  private final Backend be;
  private final List<DecayRun> runs;
  private final Tensor m; // F32 (P) first moment, torch's exp_avg
  private final Tensor v; // F32 (P) second moment, torch's exp_avg_sq
  private final Tensor sumSq; // F32 (1) squared global grad norm of the last step, before clipping
  private Settings settings;
  private int step;

  public AdamW(Parameters params, Settings settings, Predicate<Parameters.Slice> decay) {
    if (params.expertShard().split()) {
      throw new IllegalArgumentException(
          "the model's experts are split over ranks (expert parallel): use the sharded optimizer");
    }
    this.params = params;
    this.be = params.masterFlat().backend();
    this.settings = settings;
    this.runs = DecayRun.of(params, decay);
    this.m = be.zeros(DType.F32, params.count());
    this.v = be.zeros(DType.F32, params.count());
    this.sumSq = be.zeros(DType.F32, 1);
  }

  public Settings settings() {
    return settings;
  }

  /** Changes the hyperparameters from the next step on (e.g. a new weight decay). */
  public void setSettings(Settings s) {
    this.settings = s;
  }

  /** Steps taken so far (torch's state["step"]). */
  @Override
  public int stepCount() {
    return step;
  }

  /**
   * One step at learning rate lr (a schedule's value): measure the global gradient norm, clip the
   * gradients to maxGradNorm, then update every parameter. Reads nothing back to the host.
   */
  @Override
  public void step(float lr) {
    if (!(lr >= 0)) {
      throw new IllegalArgumentException("AdamW: need lr >= 0, got " + lr);
    }
    Tensor grad = params.gradFlat();
    measure(grad);
    if (settings.maxGradNorm() > 0) {
      be.clipByNorm(grad, sumSq, settings.maxGradNorm());
    }
    step++;
    Tensor master = params.masterFlat();
    Tensor work = params.hasWorkingCopy() ? params.workFlat() : null;
    AdamWCoefficients decayed = coefficients(settings, lr, true, step);
    AdamWCoefficients undecayed = coefficients(settings, lr, false, step);
    for (DecayRun r : runs) {
      be.adamwStep(
          master.view(r.offset(), r.numel()),
          grad.view(r.offset(), r.numel()),
          m.view(r.offset(), r.numel()),
          v.view(r.offset(), r.numel()),
          r.decay() ? decayed : undecayed,
          work == null ? null : work.view(r.offset(), r.numel()));
    }
  }

  /**
   * The step's float32 constants, computed once per step for every run of parameters (and by
   * ShardedAdamW the same way): with the settings' weight decay, or without it for parameters that
   * do not decay.
   */
  public static AdamWCoefficients coefficients(Settings s, float lr, boolean decay, int step) {
    return AdamWCoefficients.of(
        lr, s.beta1(), s.beta2(), s.eps(), decay ? s.weightDecay() : 0f, step);
  }

  /**
   * The global L2 norm of the gradients as they are now, without changing them or the optimizer
   * (waits for the device): for a trainer that checks a step before taking it.
   */
  @Override
  public float measureGradNorm() {
    measure(params.gradFlat());
    return lastGradNorm();
  }

  private void measure(Tensor grad) {
    be.fill(sumSq, 0f);
    be.sumSquares(grad, sumSq);
  }

  /**
   * The global L2 norm of the gradients at the last step, before clipping (waits for the device).
   */
  @Override
  public float lastGradNorm() {
    return (float) Math.sqrt(be.download(sumSq).toFloatArray()[0]);
  }

  /** The flat first moment F32 (P), in the parameters' layout. */
  public Tensor firstMoment() {
    return m;
  }

  /** The flat second moment F32 (P), in the parameters' layout. */
  public Tensor secondMoment() {
    return v;
  }

  /**
   * The moments by checkpoint name, as host tensors: {@code exp_avg.<hub name>} and {@code
   * exp_avg_sq.<hub name>} (hub names keep every tensor far below the 2 GiB host limit) of every
   * trainable parameter, adapters included. The step count is {@link #stepCount()}.
   */
  @Override
  public Map<String, HostTensor> stateToHost() {
    return momentsToHost(be, params, m, v);
  }

  /**
   * Restores moments saved by {@link #stateToHost()} and the step count. Every moment of every
   * parameter must be present with its shape.
   */
  @Override
  public void loadState(Map<String, HostTensor> state, int stepCount) {
    readMoments(
        params,
        state,
        stepCount,
        (first, slice, t) -> be.copyFromHost(t, Parameters.view(first ? m : v, slice)));
    this.step = stepCount;
  }

  /**
   * Whole moments (F32, in the parameters' flat layout) by checkpoint name: {@code exp_avg.<hub
   * name>} and {@code exp_avg_sq.<hub name>} of every trainable parameter (hub names keep every
   * tensor far below the 2 GiB host limit). Shared with the sharded optimizer.
   */
  public static Map<String, HostTensor> momentsToHost(
      Backend be, Parameters params, Tensor m, Tensor v) {
    Map<String, HostTensor> out = new LinkedHashMap<>();
    for (String name : params.trainableNames()) {
      if (!params.holds(name)) {
        continue; // another expert-parallel rank's expert: the sharded optimizer gathers it
      }
      Parameters.Slice s = params.resolve(name);
      if (s.offset() >= params.replicatedCount()) {
        continue; // this rank's own expert: likewise
      }
      out.put("exp_avg." + name, be.download(Parameters.view(m, s)));
      out.put("exp_avg_sq." + name, be.download(Parameters.view(v, s)));
    }
    return out;
  }

  /**
   * Where {@link #readMoments} hands each saved moment: first or second, its parameter, its data.
   */
  public interface MomentSink {
    void accept(boolean first, Parameters.Slice slice, HostTensor moment);
  }

  /**
   * Checks that {@code state} (as {@link #momentsToHost} names it) holds both moments of every
   * trainable parameter with its shape and that the step count is not negative, then hands each
   * moment to {@code sink}. Shared with the sharded optimizer.
   */
  public static void readMoments(
      Parameters params, Map<String, HostTensor> state, int stepCount, MomentSink sink) {
    List<String> missing = new ArrayList<>();
    for (String name : params.trainableNames()) {
      long numel = params.holds(name) ? params.resolve(name).numel() : -1;
      for (String kind : new String[] {"exp_avg.", "exp_avg_sq."}) {
        HostTensor t = state.get(kind + name);
        if (t == null || (numel >= 0 && t.numel() != numel)) {
          missing.add(kind + name);
        }
      }
    }
    if (!missing.isEmpty()) {
      throw new IllegalArgumentException(
          "optimizer state lacks or misshapes "
              + missing.size()
              + " tensor(s), first: "
              + missing.get(0));
    }
    if (stepCount < 0) {
      throw new IllegalArgumentException("optimizer step count " + stepCount + " is negative");
    }
    for (String name : params.trainableNames()) {
      if (!params.holds(name)) {
        continue; // another expert-parallel rank's expert
      }
      Parameters.Slice s = params.resolve(name);
      sink.accept(true, s, state.get("exp_avg." + name));
      sink.accept(false, s, state.get("exp_avg_sq." + name));
    }
  }

  @Override
  public void close() {
    m.close();
    v.close();
    sumSq.close();
  }
}
