package moetune.engine.train;

/**
 * The result of one micro-batch's forward and backward.
 *
 * @param lossSum sum of token cross-entropies over labelled tokens
 * @param labelledTokens tokens with a target
 * @param auxLoss the load-balancing loss (transformers' definition, all layers at once), 0 for a
 *     model without a router
 * @param zLoss the router z-loss (ST-MoE, all layers at once), 0 when its coefficient is 0 or for a
 *     model without a router
 * @param routing the router's per-layer counts and entropies, or null for a model without one
 */
public record MicroStep(
    double lossSum, long labelledTokens, double auxLoss, double zLoss, RouterStats routing) {}
