package dev.tessera.serving.text;

import dev.tessera.models.sample.TokenLogprob;
import dev.tessera.models.tokenizer.StreamingDecoder;
import dev.tessera.models.tokenizer.Tokenizer;
import dev.tessera.scheduler.engine.FinishReason;
import dev.tessera.scheduler.engine.RequestHandle;
import dev.tessera.scheduler.engine.TokenEvent;

import java.util.ArrayList;
import java.util.List;

/**
 * One choice of a response: turns the engine's token events into text deltas that are whole UTF-8 characters, cut
 * before the first stop string, each with the tokens (and logprobs) that produced it. When a stop string appears the
 * request is cancelled, so the engine stops within one step.
 */
public final class ChoiceStream {

    /**
     * One sampled token, as the client sees it.
     *
     * @param textOffset chars of this choice's text that precede the token's text
     * @param top        the most likely alternatives (empty when not asked for)
     */
    public record TokenInfo(int token, float logprob, TokenLogprob[] top, int textOffset) {}

    /**
     * Text released by one event, possibly empty.
     *
     * @param finishReason "stop" or "length" on the last delta, else null
     */
    public record Delta(String text, List<TokenInfo> tokens, String finishReason) {
        public boolean isEmpty() {
            return text.isEmpty() && tokens.isEmpty() && finishReason == null;
        }
    }

    /** The engine failed this request. */
    public static final class EngineFailure extends RuntimeException {
        private final boolean deviceUnavailable;

        public EngineFailure(String message, boolean deviceUnavailable) {
            super(message);
            this.deviceUnavailable = deviceUnavailable;
        }

        /** A device the engine needs is gone for now: a 503, not a 500. */
        public boolean deviceUnavailable() {
            return deviceUnavailable;
        }

        /** The OpenAI error this failure answers with. */
        public dev.tessera.serving.openai.ApiException toApiException() {
            return deviceUnavailable ? dev.tessera.serving.openai.ApiException.deviceUnavailable(getMessage())
                    : dev.tessera.serving.openai.ApiException.serverError("generation failed: " + getMessage());
        }
    }

    private final int index;
    private final RequestHandle handle;
    private final StreamingDecoder decoder;
    private final StopStringMatcher stops;
    private final long startNanos;
    private List<TokenInfo> pending = new ArrayList<>();
    private int numDecodedChars;  // chars the decoder produced so far (released or held)
    private int numTokens;        // tokens consumed before the end (the ones past a stop string are not counted)
    private long firstTokenNanos = -1;
    private long lastTokenNanos = -1;
    private TokenEvent.Finished finished;
    private TokenEvent.PromptLogprobs promptLogprobs;
    private String finishReason;

    /**
     * @param index             the choice's index in the response
     * @param stripLeadingSpace the prompt was BOS alone: drop the tokenizer's space prefix of the first piece
     * @param startNanos        when the HTTP request arrived, for time to first token
     */
    public ChoiceStream(int index, RequestHandle handle, Tokenizer tokenizer, List<String> stops,
                        boolean stripLeadingSpace, long startNanos) {
        this.index = index;
        this.handle = handle;
        this.decoder = new StreamingDecoder(tokenizer, stripLeadingSpace);
        this.stops = new StopStringMatcher(stops);
        this.startNanos = startNanos;
    }

    public int index() { return index; }

    public RequestHandle handle() { return handle; }

    /** True once the last delta (with the finish reason) was returned. */
    public boolean done() { return finishReason != null; }

    /** Tokens this choice generated (counted in usage). */
    public int numTokens() { return numTokens; }

    /** The engine's final event, or null before the end. */
    public TokenEvent.Finished finished() { return finished; }

    public String finishReason() { return finishReason; }

    /** The prompt's log-probabilities when the request asked for them, once they came (before the first delta). */
    public TokenEvent.PromptLogprobs promptLogprobs() { return promptLogprobs; }

    /** Nanos from the request's arrival to its first token, or -1. */
    public long timeToFirstTokenNanos() { return firstTokenNanos < 0 ? -1 : firstTokenNanos - startNanos; }

    /** Mean nanos between tokens after the first, or -1 with fewer than two tokens. */
    public long timePerOutputTokenNanos() {
        return numTokens < 2 ? -1 : (lastTokenNanos - firstTokenNanos) / (numTokens - 1);
    }

    /**
     * Waits for the next engine event and returns what it releases; the last delta carries the finish reason.
     *
     * @throws EngineFailure when the engine failed the request
     */
    public Delta next() throws InterruptedException {
        if (done()) throw new IllegalStateException("choice " + index + " already finished");
        while (true) {
            TokenEvent event = handle.take();
            switch (event) {
                case TokenEvent.Token t -> {
                    if (stops.stopped()) continue; // sampled before the cancel took effect: not part of the answer
                    long now = System.nanoTime();
                    if (firstTokenNanos < 0) firstTokenNanos = now;
                    lastTokenNanos = now;
                    numTokens++;
                    pending.add(new TokenInfo(t.token(), t.logprob() == null ? 0f : t.logprob().logprob(), t.top(),
                            numDecodedChars));
                    String piece = decoder.feed(t.token());
                    numDecodedChars += piece.length();
                    String text = stops.push(piece);
                    if (stops.stopped()) {
                        handle.cancel();
                        return drainAfterStop(text);
                    }
                    return release(text, null);
                }
                case TokenEvent.Finished f -> {
                    finished = f;
                    String tail = decoder.flush();
                    String text = stops.push(tail);
                    if (!stops.stopped()) text += stops.flush();
                    String reason = stops.stopped() || f.reason() != FinishReason.LENGTH ? "stop" : "length";
                    return release(text, reason);
                }
                case TokenEvent.Failed e -> {
                    finishReason = "error";
                    throw new EngineFailure(e.message(), e.deviceUnavailable());
                }
                case TokenEvent.PromptLogprobs p -> promptLogprobs = p;
            }
        }
    }

    /** Cancels the request and waits (one engine step at most) until the engine lets go of it. */
    public void cancel() throws InterruptedException {
        handle.cancel();
        while (!done()) {
            TokenEvent event = handle.take();
            if (event instanceof TokenEvent.Finished f) {
                finished = f;
                finishReason = "stop";
            } else if (event instanceof TokenEvent.Failed) {
                finishReason = "error";
            }
        }
    }

    /** After a stop string: the engine was told to cancel; wait for its final event so usage and metrics add up. */
    private Delta drainAfterStop(String text) throws InterruptedException {
        while (true) {
            TokenEvent event = handle.take();
            if (event instanceof TokenEvent.Finished f) {
                finished = f;
                return release(text, "stop");
            }
            if (event instanceof TokenEvent.Failed) return release(text, "stop");
        }
    }

    private Delta release(String text, String reason) {
        // Tokens whose text is still held back (partial characters, a possible stop string) wait for their text,
        // except at the end, where everything goes.
        if (text.isEmpty() && reason == null) return new Delta("", List.of(), null);
        List<TokenInfo> tokens = pending;
        pending = new ArrayList<>();
        finishReason = reason;
        return new Delta(text, tokens, reason);
    }
}
