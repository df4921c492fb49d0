package moetune.engine.model;

/**
 * The losses of one forward, read back from the backend.
 *
 * @param ce causal-LM cross-entropy: mean over the non-ignored shifted targets (0 when there are
 *     none; transformers would return NaN)
 * @param aux transformers' load_balancing_loss_func over every layer's router
 * @param z the ST-MoE router z-loss: logsumexp(router logits)^2 averaged over every layer's tokens
 *     (padding excluded); 0 when {@link ModelOptions#routerZLossCoef} is 0, where it is not
 *     computed
 * @param total ce + router_aux_loss_coef * aux + routerZLossCoef * z (what {@link
 *     MixtralModel#backward} differentiates)
 * @param targetTokens the number of non-ignored targets the mean ran over
 */
public record Loss(float ce, float aux, float z, float total, int targetTokens) {}
