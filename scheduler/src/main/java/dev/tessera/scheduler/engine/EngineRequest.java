package dev.tessera.scheduler.engine;

import dev.tessera.models.sample.SamplingParams;

import java.util.Objects;
import java.util.function.IntPredicate;

/**
 * One sequence to generate.
 *
 * @param id             caller's id, for logs
 * @param promptTokens   the prompt, BOS included when wanted; at least one token
 * @param params         sampling; {@code params.numLogprobs()} alternatives are reported per token when
 *                       {@code returnLogprobs} is set
 * @param maxTokens      the most tokens to generate, >= 1
 * @param isStop         tokens that end generation without being emitted (EOS, EOT)
 * @param returnLogprobs report the chosen token's log-probability and the top alternatives with each token
 */
public record EngineRequest(String id, int[] promptTokens, SamplingParams params, int maxTokens, IntPredicate isStop,
                            boolean returnLogprobs) {
    public EngineRequest {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(params, "params");
        Objects.requireNonNull(isStop, "isStop");
        if (promptTokens == null || promptTokens.length == 0) throw new IllegalArgumentException(id + ": prompt has no tokens");
        if (maxTokens < 1) throw new IllegalArgumentException(id + ": maxTokens must be >= 1, found " + maxTokens);
        promptTokens = promptTokens.clone();
    }
}
