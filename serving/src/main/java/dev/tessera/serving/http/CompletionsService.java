package dev.tessera.serving.http;

import dev.tessera.models.sample.TokenLogprob;
import dev.tessera.models.tokenizer.StreamingDecoder;
import dev.tessera.models.tokenizer.Tokenizer;
import dev.tessera.serving.ServedModel;
import dev.tessera.serving.ServingContext;
import dev.tessera.serving.openai.ApiException;
import dev.tessera.serving.openai.CompletionRequest;
import dev.tessera.serving.openai.CompletionResponse;
import dev.tessera.serving.openai.Usage;
import dev.tessera.scheduler.engine.TokenEvent;
import dev.tessera.serving.text.ChoiceStream;
import dev.tessera.serving.http.edge.ClientDisconnects;
import io.helidon.http.HeaderNames;
import io.helidon.webserver.http.HttpRules;
import io.helidon.webserver.http.HttpService;
import io.helidon.webserver.http.ServerRequest;
import io.helidon.webserver.http.ServerResponse;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** {@code POST /v1/completions}: OpenAI's legacy text completions, whole or streamed. */
public final class CompletionsService implements HttpService {
    private final ServingContext context;

    public CompletionsService(ServingContext context) {
        this.context = context;
    }

    @Override
    public void routing(HttpRules rules) {
        rules.post("/completions", this::complete)
                .any("/completions", Responses::methodNotAllowed);
    }

    private void complete(ServerRequest req, ServerResponse res) {
        long startNanos = System.nanoTime();
        Responses.guarded(res, () -> {
            ServedModel model = context.requireModel();
            CompletionRequest r = CompletionRequest.parse(JsonBody.read(req, context.config().maxBodyBytes()));
            ModelsService.requireModelName(model, r.model());
            Generation.checkLogitBias(model, r.sampling());
            Tokenizer tokenizer = model.tokenizer();
            List<Generation.Prompt> prompts = new ArrayList<>();
            List<String> promptTexts = new ArrayList<>();
            for (CompletionRequest.Prompt p : r.prompts()) {
                if (p instanceof CompletionRequest.Prompt.Text t) Generation.checkTextFits(model, t.text(), "prompt");
                int[] ids = switch (p) {
                    case CompletionRequest.Prompt.Text t -> tokenizer.encode(t.text(), true, false);
                    case CompletionRequest.Prompt.Tokens t -> t.ids();
                };
                if (ids.length == 0) throw ApiException.invalid("prompt", "the prompt has no tokens (empty text, and the model adds no BOS)");
                Generation.checkTokenIds(model, ids, "prompt");
                Generation.checkContext(model, ids.length, r.maxTokens(), "prompt");
                prompts.add(new Generation.Prompt(ids, r.maxTokens()));
                promptTexts.add(switch (p) {
                    case CompletionRequest.Prompt.Text t -> t.text();
                    case CompletionRequest.Prompt.Tokens t -> tokenizer.decode(t.ids());
                });
            }
            String id = Generation.newId("cmpl-");
            // echo with logprobs: the echoed prompt's tokens get theirs too, as OpenAI's legacy API and vLLM give them.
            int promptLogprobs = r.echo() && r.logprobs() != null ? r.logprobs() : -1;
            Generation g = Generation.start(model, context, startNanos, prompts, r.n(), r.sampling(), r.stop(),
                    r.logprobs() != null, promptLogprobs, id, "prompt");
            RequestOutcome outcome = RequestOutcome.of(req);
            String tag = req.headers().first(HeaderNames.create(ClientDisconnects.HEADER)).orElse(null);
            // A whole response writes nothing until it ends, so only the edge sees its client leave.
            try (ClientDisconnects.Registration watch = ClientDisconnects.watch(tag, g::clientGone)) {
                if (r.stream()) stream(res, r, g, id, promptTexts, outcome);
                else respond(res, r, g, id, promptTexts, outcome);
            } finally {
                g.abort();
            }
        });
    }

    private void respond(ServerResponse res, CompletionRequest r, Generation g, String id, List<String> promptTexts,
                         RequestOutcome outcome) throws InterruptedException {
        Tokenizer tokenizer = g.model().tokenizer();
        List<CompletionResponse.Choice> out = new ArrayList<>();
        for (ChoiceStream c : g.choices()) {
            StringBuilder text = new StringBuilder();
            String echo = r.echo() ? promptTexts.get(c.index() / r.n()) : "";
            text.append(echo);
            Logprobs logprobs = r.logprobs() == null ? null : new Logprobs(tokenizer);
            ChoiceStream.Delta d;
            boolean first = true;
            do {
                d = next(c);
                if (first && logprobs != null && r.echo()) logprobs.addPrompt(c.handle().request().promptTokens(), c.promptLogprobs(), echo.length());
                first = false;
                if (logprobs != null) logprobs.add(d.tokens(), echo.length());
                text.append(d.text());
            } while (d.finishReason() == null);
            g.finished(c);
            if (g.isClientGone() || g.endedForShutdown()) break;
            out.add(new CompletionResponse.Choice(c.index(), text.toString(), logprobs == null ? null : logprobs.build(),
                    d.finishReason()));
        }
        // Helidon needs an answer even for a client that left; writing it fails quietly (Responses.guarded).
        if (g.isClientGone()) outcome.note("client closed the connection; generation cancelled");
        if (g.endedForShutdown()) {
            outcome.note("ended by shutdown");
            throw ApiException.shuttingDown("server shut down before the answer was complete");
        }
        Responses.json(res, 200, new CompletionResponse(id, CompletionResponse.OBJECT, nowSeconds(), g.model().name(), out,
                Usage.of(g.numPromptTokens(), g.numCompletionTokens())));
    }

    private void stream(ServerResponse res, CompletionRequest r, Generation g, String id, List<String> promptTexts,
                        RequestOutcome outcome) {
        Tokenizer tokenizer = g.model().tokenizer();
        long created = nowSeconds();
        String name = g.model().name();
        SseSink sse = new SseSink(res);
        try {
            for (ChoiceStream c : g.choices()) {
                String echo = r.echo() ? promptTexts.get(c.index() / r.n()) : "";
                // With logprobs the echo waits for the prompt's scores, which come with (before) the first delta.
                boolean echoPending = r.echo() && r.logprobs() != null;
                if (!echoPending && !echo.isEmpty() && !sse.send(chunk(id, created, name, c.index(), echo, null, null))) return;
                ChoiceStream.Delta d;
                do {
                    try {
                        d = c.next();
                    } catch (ChoiceStream.EngineFailure e) {
                        // The failure as an error event, then [DONE], as vLLM ends a failed stream.
                        if (sse.send(e.toApiException().body())) sse.done();
                        return;
                    }
                    if (g.endedForShutdown()) {
                        endForShutdown(sse, outcome);
                        return;
                    }
                    if (echoPending) {
                        echoPending = false;
                        Logprobs prompt = new Logprobs(tokenizer);
                        prompt.addPrompt(c.handle().request().promptTokens(), c.promptLogprobs(), echo.length());
                        if (!sse.send(chunk(id, created, name, c.index(), echo, prompt.build(), null))) return;
                    }
                    if (d.isEmpty()) continue;
                    Logprobs logprobs = null;
                    if (r.logprobs() != null && !d.tokens().isEmpty()) {
                        logprobs = new Logprobs(tokenizer);
                        logprobs.add(d.tokens(), echo.length());
                    }
                    if (!sse.send(chunk(id, created, name, c.index(), d.text(), logprobs == null ? null : logprobs.build(), d.finishReason()))) {
                        return; // client gone: abort() in the caller cancels generation
                    }
                } while (d.finishReason() == null);
                g.finished(c);
            }
            if (r.includeUsage()) {
                if (!sse.send(new CompletionResponse(id, CompletionResponse.OBJECT, created, name, List.of(),
                        Usage.of(g.numPromptTokens(), g.numCompletionTokens())))) return;
            }
            sse.done();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException e) {
            // Headers are gone: the error travels as an event, as vLLM sends it.
            System.err.println("tessera serve: stream " + id + " failed: " + e);
            e.printStackTrace(System.err);
            sse.send(e instanceof ApiException a ? a.body() : ApiException.serverError("internal error; the server log has the details").body());
        } finally {
            if (sse.isBroken()) outcome.note("client closed the connection; generation cancelled");
            sse.close();
        }
    }

    /** The shutdown's grace period ran out: an error event and [DONE], so the client sees the answer is cut off. */
    static void endForShutdown(SseSink sse, RequestOutcome outcome) {
        sse.send(ApiException.shuttingDown("server shut down before the answer was complete").body());
        sse.done();
        outcome.note("ended by shutdown with an error event");
    }

    private static CompletionResponse chunk(String id, long created, String model, int index, String text,
                                            CompletionResponse.Logprobs logprobs, String finishReason) {
        return new CompletionResponse(id, CompletionResponse.OBJECT, created, model,
                List.of(new CompletionResponse.Choice(index, text, logprobs, finishReason)), null);
    }

    /** Waits for a choice's next delta; an engine failure is a 500, a lost device a 503. */
    static ChoiceStream.Delta next(ChoiceStream c) throws InterruptedException {
        try {
            return c.next();
        } catch (ChoiceStream.EngineFailure e) {
            throw e.toApiException();
        }
    }

    static long nowSeconds() {
        return System.currentTimeMillis() / 1000;
    }

    /** Builds OpenAI's legacy logprobs lists token by token. */
    private static final class Logprobs {
        private final Tokenizer tokenizer;
        private final List<String> tokens = new ArrayList<>();
        private final List<Float> tokenLogprobs = new ArrayList<>();
        private final List<Map<String, Float>> top = new ArrayList<>();
        private final List<Integer> offsets = new ArrayList<>();

        Logprobs(Tokenizer tokenizer) {
            this.tokenizer = tokenizer;
        }

        void add(List<ChoiceStream.TokenInfo> infos, int offsetShift) {
            for (ChoiceStream.TokenInfo t : infos) {
                tokens.add(text(t.token()));
                tokenLogprobs.add(t.logprob());
                top.add(alternatives(t.top()));
                offsets.add(t.textOffset() + offsetShift);
            }
        }

        /**
         * The prompt's tokens first (echo): the first has no log-probability (null, as OpenAI gives it), each later one
         * the engine's score given the tokens before it. Offsets are where each token's text starts in the echoed
         * prompt: the length of the text the tokens before it decode to (control tokens add none, the space prefix of
         * a SentencePiece vocabulary is dropped), at most the prompt's length.
         */
        void addPrompt(int[] prompt, TokenEvent.PromptLogprobs scores, int echoLength) {
            StreamingDecoder decoder = new StreamingDecoder(tokenizer, tokenizer.addSpacePrefix());
            int offset = 0;
            for (int i = 0; i < prompt.length; i++) {
                tokens.add(text(prompt[i]));
                boolean scored = i > 0 && scores != null && i - 1 < scores.chosen().length;
                tokenLogprobs.add(scored ? scores.chosen()[i - 1].logprob() : null);
                top.add(scored ? alternatives(scores.top()[i - 1]) : null);
                offsets.add(Math.min(offset, echoLength));
                offset += decoder.feed(prompt[i]).length();
            }
        }

        /** Each alternative's text to its log-probability, most likely first (a text two tokens share keeps the first). */
        private Map<String, Float> alternatives(TokenLogprob[] top) {
            Map<String, Float> out = new LinkedHashMap<>();
            for (TokenLogprob alt : top) out.putIfAbsent(text(alt.token()), alt.logprob());
            return out;
        }

        private String text(int token) {
            return new String(tokenizer.tokenBytes(token, true), StandardCharsets.UTF_8);
        }

        CompletionResponse.Logprobs build() {
            return new CompletionResponse.Logprobs(tokens, tokenLogprobs, top, offsets);
        }
    }
}
