package moetune.engine.model;

import moetune.engine.hf.MixtralConfig;

/**
 * The weights of the router losses in the total loss that {@link MixtralModel#forward} reports and
 * {@link MixtralModel#backward} differentiates: total = ce + aux * loadBalancing + z * zLoss. A
 * training run passes its own (the run config's aux-loss-coef and router-z-loss-coef); a model used
 * on its own takes {@link #of(MixtralConfig)}, as transformers does.
 *
 * @param aux the load-balancing loss coefficient (transformers' router_aux_loss_coef)
 * @param z the ST-MoE router z-loss coefficient; 0 turns the z-loss off, and it is then not even
 *     computed, so the total stays bit-identical to a model without it
 */
public record LossWeights(double aux, double z) {
  public LossWeights {
    if (!(aux >= 0) || Double.isInfinite(aux) || !(z >= 0) || Double.isInfinite(z)) {
      throw new IllegalArgumentException(
          "LossWeights: the aux and z-loss coefficients must be finite and >= 0, got aux "
              + aux
              + ", z "
              + z);
    }
  }

  /** The config's router_aux_loss_coef, no z-loss (Mixtral's config.json has none). */
  public static LossWeights of(MixtralConfig c) {
    return new LossWeights(c.routerAuxLossCoef, 0);
  }
}
