package moetune.engine.train;

/**
 * Facts about a run known before its first step.
 *
 * @param startStep the step the run starts from (0, or the resumed checkpoint's step)
 * @param totalSteps optimizer steps the run will take in all
 * @param stepsPerEpoch optimizer steps per pass over the training sequences
 * @param trainSequences packed training sequences
 * @param evalSequences packed held-out sequences (0: no evaluation)
 * @param tokensPerStep token positions per optimizer step (micro-batch * accumulation * length)
 * @param parameters trainable parameters (elements)
 * @param device the backend's one-line description
 */
public record RunInfo(
    long startStep,
    long totalSteps,
    long stepsPerEpoch,
    int trainSequences,
    int evalSequences,
    long tokensPerStep,
    long parameters,
    String device) {}
