package dev.tessera.scheduler.engine;

import dev.tessera.models.sample.TokenLogprob;

/**
 * What a {@link RequestHandle} delivers: the prompt's log-probabilities when asked for, tokens, then exactly one
 * {@link Finished} or {@link Failed}.
 */
public sealed interface TokenEvent {

    /**
     * One sampled token.
     *
     * @param logprob its log-probability, or null when the request did not ask for logprobs
     * @param top     the most likely alternatives, most likely first (empty when not asked for)
     */
    record Token(int token, TokenLogprob logprob, TokenLogprob[] top) implements TokenEvent {}

    /**
     * The prompt's log-probabilities, when the request asked for them: entry i is prompt token i + 1 given tokens
     * 0..i (the first token has none), from the model's raw logits. Comes once, before the first {@link Token}.
     *
     * @param top per entry, the most likely tokens at that position, most likely first
     */
    record PromptLogprobs(TokenLogprob[] chosen, TokenLogprob[][] top) implements TokenEvent {}

    /**
     * The sequence ended.
     *
     * @param queueNanos time between submit and the start of prefill
     */
    record Finished(FinishReason reason, int numPromptTokens, int numGeneratedTokens, long queueNanos,
                    long prefillNanos, long decodeNanos) implements TokenEvent {}

    /**
     * The engine could not run the request; {@code message} is one line.
     *
     * @param deviceUnavailable a device it needs is gone for now (retrying later may work)
     */
    record Failed(String message, boolean deviceUnavailable) implements TokenEvent {}
}
