package dev.tessera.serving.http;

import dev.tessera.models.sample.SamplingParams;
import dev.tessera.models.tokenizer.Tokenizer;
import dev.tessera.scheduler.engine.EngineOverloadedException;
import dev.tessera.scheduler.engine.EngineRequest;
import dev.tessera.scheduler.engine.RequestHandle;
import dev.tessera.scheduler.engine.TokenEvent;
import dev.tessera.serving.ServedModel;
import dev.tessera.serving.ServingContext;
import dev.tessera.serving.metrics.ServingMetrics;
import dev.tessera.serving.openai.ApiException;
import dev.tessera.serving.text.ChoiceStream;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.WeakHashMap;
import java.util.concurrent.ThreadLocalRandom;

/**
 * The engine side of one HTTP request: checks the prompts against the model, submits {@code n} engine requests per
 * prompt (choice {@code i} with seed {@code seed + i}), and records each choice's metrics when it ends.
 */
final class Generation {
    private final ServedModel model;
    private final ServingMetrics metrics;
    private final long startNanos;
    private final List<ChoiceStream> choices;
    private final int numPromptTokens;
    private final InFlight inFlight;
    private volatile boolean endedForShutdown;
    private volatile boolean clientGone;

    private Generation(ServedModel model, ServingMetrics metrics, long startNanos, List<ChoiceStream> choices, int numPromptTokens,
                       InFlight inFlight) {
        this.model = model;
        this.metrics = metrics;
        this.startNanos = startNanos;
        this.choices = choices;
        this.numPromptTokens = numPromptTokens;
        this.inFlight = inFlight;
    }

    /** A prompt ready to submit. @param maxTokens tokens to generate for it */
    record Prompt(int[] tokens, int maxTokens) {}

    /**
     * Submits every choice. A full queue cancels what was already submitted and answers 429; a request with more
     * choices than the queue holds could never be queued, and is a 400 naming the limit.
     *
     * @param promptParam the request field holding the prompts ("prompt" or "messages")
     */
    static Generation start(ServedModel model, ServingContext context, long startNanos, List<Prompt> prompts, int n,
                            SamplingParams params, List<String> stop, boolean logprobs, String idPrefix, String promptParam) {
        return start(model, context, startNanos, prompts, n, params, stop, logprobs, -1, idPrefix, promptParam);
    }

    /** @param promptLogprobs -1, or score every prompt token with this many top alternatives (completions' echo + logprobs) */
    static Generation start(ServedModel model, ServingContext context, long startNanos, List<Prompt> prompts, int n,
                            SamplingParams params, List<String> stop, boolean logprobs, int promptLogprobs, String idPrefix,
                            String promptParam) {
        long numChoices = (long) prompts.size() * n;
        int maxQueue = context.maxQueue();
        if (numChoices > maxQueue) {
            throw ApiException.invalid(n > maxQueue ? "n" : promptParam, "this request asks for " + numChoices + " sequences ("
                    + prompts.size() + " prompts x n=" + n + "), more than the server queues at once (--max-queue " + maxQueue + ")");
        }
        ServingMetrics metrics = context.metrics();
        Tokenizer tokenizer = model.tokenizer();
        List<ChoiceStream> choices = new ArrayList<>();
        int numPromptTokens = 0;
        try {
            for (int p = 0; p < prompts.size(); p++) {
                Prompt prompt = prompts.get(p);
                numPromptTokens += prompt.tokens().length;
                boolean bosOnly = prompt.tokens().length == 1 && prompt.tokens()[0] == tokenizer.bosId();
                for (int i = 0; i < n; i++) {
                    SamplingParams choiceParams = params.seed() == null ? params : params.withSeed(params.seed() + i);
                    EngineRequest request = new EngineRequest(idPrefix + "-" + (p * n + i), prompt.tokens(), choiceParams,
                            prompt.maxTokens(), tokenizer::isEndOfGeneration, logprobs, promptLogprobs);
                    RequestHandle handle = model.engine().submit(request);
                    choices.add(new ChoiceStream(p * n + i, handle, tokenizer, stop, bosOnly, startNanos));
                }
            }
        } catch (EngineOverloadedException e) {
            for (ChoiceStream c : choices) c.handle().cancel();
            throw ApiException.overloaded("server is busy: " + e.getMessage() + "; retry later", 1);
        }
        Generation g = new Generation(model, metrics, startNanos, choices, numPromptTokens, context.inFlight());
        context.inFlight().add(g);
        return g;
    }

    /** Shutdown's grace period is over: stop generating; the handler ends the response with an error. */
    void endForShutdown() {
        endedForShutdown = true;
        for (ChoiceStream c : choices) c.handle().cancel();
    }

    boolean endedForShutdown() { return endedForShutdown; }

    /** The client hung up (the edge saw it): stop generating, nobody will read the answer. */
    void clientGone() {
        clientGone = true;
        for (ChoiceStream c : choices) c.handle().cancel();
    }

    boolean isClientGone() { return clientGone; }

    /** Token ids of a prompt must be in the vocabulary. */
    static void checkTokenIds(ServedModel model, int[] ids, String param) {
        int vocab = model.tokenizer().vocabSize();
        for (int id : ids) {
            if (id < 0 || id >= vocab) {
                throw ApiException.invalid(param, "token id " + id + " is outside the vocabulary [0, " + vocab + ")");
            }
        }
    }

    /** logit_bias keys must be token ids of the vocabulary. */
    static void checkLogitBias(ServedModel model, SamplingParams params) {
        int vocab = model.tokenizer().vocabSize();
        for (Map.Entry<Integer, Float> e : params.logitBias().entrySet()) {
            if (e.getKey() >= vocab) {
                throw ApiException.invalid("logit_bias", "'logit_bias' token id " + e.getKey() + " is outside the vocabulary [0, " + vocab + ")");
            }
        }
    }

    /** Bytes of each tokenizer's longest token text: a text of B bytes has at least B / that many tokens. */
    private static final Map<Tokenizer, Integer> LONGEST_TOKEN_BYTES = Collections.synchronizedMap(new WeakHashMap<>());

    /**
     * Refuses a text that cannot fit the context whatever its tokens, before tokenizing it: tokenizing megabytes
     * only to refuse them left ~140 MB of garbage per request.
     */
    static void checkTextFits(ServedModel model, String text, String param) {
        long bytes = 0;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            bytes += c < 0x80 ? 1 : c < 0x800 ? 2 : Character.isSurrogate(c) ? 2 : 3;
        }
        int longest = LONGEST_TOKEN_BYTES.computeIfAbsent(model.tokenizer(), Generation::longestTokenBytes);
        long minTokens = bytes / longest;
        if (minTokens > model.contextLength()) {
            throw ApiException.invalid(param, model.engine().sequenceLimitName() + " is " + model.contextLength()
                    + " tokens; the prompt has at least " + minTokens + " tokens (" + bytes + " bytes of text)");
        }
    }

    private static int longestTokenBytes(Tokenizer tokenizer) {
        int longest = 1;
        for (int id = 0; id < tokenizer.vocabSize(); id++) longest = Math.max(longest, tokenizer.tokenBytes(id, true).length);
        return longest;
    }

    /** The prompt plus the tokens to generate must fit the context, as OpenAI and vLLM check. */
    static void checkContext(ServedModel model, int numPromptTokens, int maxTokens, String param) {
        int context = model.contextLength();
        String limit = model.engine().sequenceLimitName();
        if (numPromptTokens >= context) {
            throw ApiException.invalid(param, limit + " is " + context + " tokens, the prompt has "
                    + numPromptTokens + " tokens");
        }
        if ((long) numPromptTokens + maxTokens > context) {
            throw ApiException.invalid("max_tokens", limit + " is " + context + " tokens, but "
                    + numPromptTokens + " prompt tokens + " + maxTokens + " max_tokens = " + (numPromptTokens + maxTokens) + " tokens were requested");
        }
    }

    static String newId(String prefix) {
        ThreadLocalRandom r = ThreadLocalRandom.current();
        return prefix + Long.toHexString(r.nextLong() | Long.MIN_VALUE) + Long.toHexString(r.nextLong() | Long.MIN_VALUE).substring(0, 8);
    }

    List<ChoiceStream> choices() { return choices; }

    ServedModel model() { return model; }

    int numPromptTokens() { return numPromptTokens; }

    int numCompletionTokens() {
        int sum = 0;
        for (ChoiceStream c : choices) sum += c.numTokens();
        return sum;
    }

    /** Records a finished choice's metrics. */
    void finished(ChoiceStream c) {
        TokenEvent.Finished f = c.finished();
        String reason = c.finishReason() == null || c.finishReason().equals("error") ? "abort" : c.finishReason();
        metrics.requestFinished(reason, c.handle().request().promptTokens().length, c.numTokens(),
                f == null ? -1 : f.queueNanos(), c.timeToFirstTokenNanos(), c.timePerOutputTokenNanos(),
                System.nanoTime() - startNanos);
    }

    /**
     * Cancels every choice not yet finished (client gone, or an error) and waits until the engine let go of each:
     * one engine step for a running one.
     */
    void abort() {
        inFlight.remove(this);
        for (ChoiceStream c : choices) if (!c.done()) c.handle().cancel();
        for (ChoiceStream c : choices) {
            if (c.done()) continue;
            try {
                c.cancel();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
            metrics.requestFinished("abort", c.handle().request().promptTokens().length, c.numTokens(),
                    c.finished() == null ? -1 : c.finished().queueNanos(), c.timeToFirstTokenNanos(),
                    c.timePerOutputTokenNanos(), System.nanoTime() - startNanos);
        }
    }
}
