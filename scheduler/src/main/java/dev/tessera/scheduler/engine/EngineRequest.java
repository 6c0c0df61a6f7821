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
 * @param maxTokens      the most tokens to generate; 0 computes the prompt alone (its KV, its scores when
 *                       {@code promptLogprobs} asks for them) and ends with {@link FinishReason#LENGTH}
 * @param isStop         tokens that end generation without being emitted (EOS, EOT)
 * @param returnLogprobs report the chosen token's log-probability and the top alternatives with each token
 * @param promptLogprobs -1, or report each prompt token's log-probability given the tokens before it, with this many
 *                       top alternatives ({@link TokenEvent.PromptLogprobs}, before the first token)
 */
public record EngineRequest(String id, int[] promptTokens, SamplingParams params, int maxTokens, IntPredicate isStop,
                            boolean returnLogprobs, int promptLogprobs) {
    /** The most top alternatives a prompt position may report. */
    public static final int MAX_PROMPT_LOGPROBS = 20;

    public EngineRequest {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(params, "params");
        Objects.requireNonNull(isStop, "isStop");
        if (promptTokens == null || promptTokens.length == 0) throw new IllegalArgumentException(id + ": prompt has no tokens");
        if (maxTokens < 0) throw new IllegalArgumentException(id + ": maxTokens must be >= 0, found " + maxTokens);
        if (promptLogprobs < -1 || promptLogprobs > MAX_PROMPT_LOGPROBS)
            throw new IllegalArgumentException(id + ": promptLogprobs must be -1 (off) or 0.." + MAX_PROMPT_LOGPROBS + ", found " + promptLogprobs);
        promptTokens = promptTokens.clone();
    }

    /** Without prompt log-probabilities. */
    public EngineRequest(String id, int[] promptTokens, SamplingParams params, int maxTokens, IntPredicate isStop, boolean returnLogprobs) {
        this(id, promptTokens, params, maxTokens, isStop, returnLogprobs, -1);
    }

    public boolean scoresPrompt() {
        return promptLogprobs >= 0;
    }
}
