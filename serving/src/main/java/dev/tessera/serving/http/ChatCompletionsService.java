package dev.tessera.serving.http;

import dev.tessera.models.sample.TokenLogprob;
import dev.tessera.models.tokenizer.Tokenizer;
import dev.tessera.serving.ServedModel;
import dev.tessera.serving.ServingContext;
import dev.tessera.serving.openai.ApiException;
import dev.tessera.serving.openai.ChatCompletionChunk;
import dev.tessera.serving.openai.ChatCompletionRequest;
import dev.tessera.serving.openai.ChatCompletionResponse;
import dev.tessera.serving.openai.ChatLogprobs;
import dev.tessera.serving.openai.Usage;
import dev.tessera.serving.text.ChoiceStream;
import dev.tessera.serving.text.ReasoningSplitter;
import dev.tessera.serving.http.edge.ClientDisconnects;
import io.helidon.http.HeaderNames;
import io.helidon.webserver.http.HttpRules;
import io.helidon.webserver.http.HttpService;
import io.helidon.webserver.http.ServerRequest;
import io.helidon.webserver.http.ServerResponse;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/** {@code POST /v1/chat/completions}: the model's chat template renders the messages; whole or streamed. */
public final class ChatCompletionsService implements HttpService {
    private final ServingContext context;

    public ChatCompletionsService(ServingContext context) {
        this.context = context;
    }

    @Override
    public void routing(HttpRules rules) {
        rules.post("/chat/completions", this::complete)
                .any("/chat/completions", Responses::methodNotAllowed);
    }

    private void complete(ServerRequest req, ServerResponse res) {
        long startNanos = System.nanoTime();
        Responses.guarded(res, () -> {
            ServedModel model = context.requireModel();
            ChatCompletionRequest r = ChatCompletionRequest.parse(JsonBody.read(req, context.config().maxBodyBytes()));
            ModelsService.requireModelName(model, r.model());
            Generation.checkLogitBias(model, r.sampling());
            String conversation = model.chat().render(r.messages(), r.templateVariables());
            Generation.checkTextFits(model, conversation, "messages");
            int[] ids = model.chat().encode(conversation);
            if (ids.length == 0) throw ApiException.invalid("messages", "the rendered conversation has no tokens");
            // Without a limit the answer may run to the end of the context.
            int maxTokens = r.maxTokens() != null ? r.maxTokens() : model.contextLength() - ids.length;
            Generation.checkContext(model, ids.length, maxTokens, "messages");
            String id = Generation.newId("chatcmpl-");
            Generation g = Generation.start(model, context, startNanos,
                    List.of(new Generation.Prompt(ids, maxTokens)), r.n(), r.sampling(), r.stop(), r.logprobs(), id, "messages");
            boolean split = r.splitReasoning() != null ? r.splitReasoning() : context.config().splitReasoning();
            // DeepSeek-R1's template opens the think block itself: the answer starts inside it.
            Reasoning reasoning = split ? new Reasoning(ReasoningSplitter.promptOpensReasoning(conversation)) : null;
            RequestOutcome outcome = RequestOutcome.of(req);
            String tag = req.headers().first(HeaderNames.create(ClientDisconnects.HEADER)).orElse(null);
            // A whole response writes nothing until it ends, so only the edge sees its client leave.
            try (ClientDisconnects.Registration watch = ClientDisconnects.watch(tag, g::clientGone)) {
                if (r.stream()) stream(res, r, g, id, outcome, reasoning);
                else respond(res, r, g, id, outcome, reasoning);
            } finally {
                g.abort();
            }
        });
    }

    /** Whether chat answers split off their reasoning, and whether the prompt already opened it. null: no split. */
    private record Reasoning(boolean startsInside) {
        ReasoningSplitter splitter() {
            return new ReasoningSplitter(startsInside);
        }
    }

    private void respond(ServerResponse res, ChatCompletionRequest r, Generation g, String id, RequestOutcome outcome, Reasoning reasoning)
            throws InterruptedException {
        Tokenizer tokenizer = g.model().tokenizer();
        List<ChatCompletionResponse.Choice> out = new ArrayList<>();
        for (ChoiceStream c : g.choices()) {
            StringBuilder text = new StringBuilder();
            List<ChatLogprobs.Entry> entries = r.logprobs() ? new ArrayList<>() : null;
            ChoiceStream.Delta d;
            do {
                d = CompletionsService.next(c);
                text.append(d.text());
                if (entries != null) entries.addAll(entries(tokenizer, d.tokens()));
            } while (d.finishReason() == null);
            g.finished(c);
            if (g.isClientGone() || g.endedForShutdown()) break;
            ChatCompletionResponse.Message message = new ChatCompletionResponse.Message("assistant", text.toString(), null);
            if (reasoning != null) {
                ReasoningSplitter splitter = reasoning.splitter();
                ReasoningSplitter.Parts whole = splitter.feed(text.toString()), rest = splitter.finish();
                String thoughts = whole.reasoning() + rest.reasoning();
                message = new ChatCompletionResponse.Message("assistant", whole.content() + rest.content(), thoughts.isEmpty() ? null : thoughts);
            }
            out.add(new ChatCompletionResponse.Choice(c.index(), message, entries == null ? null : new ChatLogprobs(entries), d.finishReason()));
        }
        // Helidon needs an answer even for a client that left; writing it fails quietly (Responses.guarded).
        if (g.isClientGone()) outcome.note("client closed the connection; generation cancelled");
        if (g.endedForShutdown()) {
            outcome.note("ended by shutdown");
            throw ApiException.shuttingDown("server shut down before the answer was complete");
        }
        Responses.json(res, 200, new ChatCompletionResponse(id, ChatCompletionResponse.OBJECT, CompletionsService.nowSeconds(),
                g.model().name(), out, Usage.of(g.numPromptTokens(), g.numCompletionTokens())));
    }

    private void stream(ServerResponse res, ChatCompletionRequest r, Generation g, String id, RequestOutcome outcome, Reasoning reasoning) {
        Tokenizer tokenizer = g.model().tokenizer();
        long created = CompletionsService.nowSeconds();
        String name = g.model().name();
        SseSink sse = new SseSink(res);
        try {
            for (ChoiceStream c : g.choices()) {
                if (!sse.send(chunk(id, created, name, c.index(), new ChatCompletionChunk.Delta("assistant", ""), null, null))) return;
                ReasoningSplitter splitter = reasoning == null ? null : reasoning.splitter();
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
                        CompletionsService.endForShutdown(sse, outcome);
                        return;
                    }
                    if (d.isEmpty()) continue;
                    ChatLogprobs logprobs = r.logprobs() ? new ChatLogprobs(entries(tokenizer, d.tokens())) : null;
                    if (!d.text().isEmpty() || !d.tokens().isEmpty()) {
                        if (!sse.send(chunk(id, created, name, c.index(), delta(splitter, d.text()), logprobs, null))) return;
                    }
                    if (d.finishReason() != null && splitter != null) {
                        // Text held back as a possible tag: the last of the side it was on.
                        ReasoningSplitter.Parts rest = splitter.finish();
                        if (!rest.reasoning().isEmpty() || !rest.content().isEmpty())
                            if (!sse.send(chunk(id, created, name, c.index(), delta(rest), null, null))) return;
                    }
                    if (d.finishReason() != null) {
                        // The finish reason travels alone in the choice's last chunk, with an empty delta, as OpenAI's.
                        if (!sse.send(chunk(id, created, name, c.index(), new ChatCompletionChunk.Delta(null, null), null, d.finishReason()))) return;
                    }
                } while (d.finishReason() == null);
                g.finished(c);
            }
            if (r.includeUsage()) {
                if (!sse.send(new ChatCompletionChunk(id, ChatCompletionChunk.OBJECT, created, name, List.of(),
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

    /** A text delta, split into reasoning and content when the answer's reasoning is split off. */
    private static ChatCompletionChunk.Delta delta(ReasoningSplitter splitter, String text) {
        return splitter == null ? new ChatCompletionChunk.Delta(null, text) : delta(splitter.feed(text));
    }

    private static ChatCompletionChunk.Delta delta(ReasoningSplitter.Parts p) {
        return new ChatCompletionChunk.Delta(null, p.content().isEmpty() && !p.reasoning().isEmpty() ? null : p.content(),
                p.reasoning().isEmpty() ? null : p.reasoning());
    }

    private static ChatCompletionChunk chunk(String id, long created, String model, int index, ChatCompletionChunk.Delta delta,
                                             ChatLogprobs logprobs, String finishReason) {
        return new ChatCompletionChunk(id, ChatCompletionChunk.OBJECT, created, model,
                List.of(new ChatCompletionChunk.Choice(index, delta, logprobs, finishReason)), null);
    }

    private static List<ChatLogprobs.Entry> entries(Tokenizer tokenizer, List<ChoiceStream.TokenInfo> tokens) {
        List<ChatLogprobs.Entry> out = new ArrayList<>(tokens.size());
        for (ChoiceStream.TokenInfo t : tokens) {
            List<ChatLogprobs.Top> top = new ArrayList<>(t.top().length);
            for (TokenLogprob alt : t.top()) {
                byte[] b = tokenizer.tokenBytes(alt.token(), true);
                top.add(new ChatLogprobs.Top(new String(b, StandardCharsets.UTF_8), alt.logprob(), bytes(b)));
            }
            byte[] b = tokenizer.tokenBytes(t.token(), true);
            out.add(new ChatLogprobs.Entry(new String(b, StandardCharsets.UTF_8), t.logprob(), bytes(b), top));
        }
        return out;
    }

    private static List<Integer> bytes(byte[] b) {
        List<Integer> out = new ArrayList<>(b.length);
        for (byte x : b) out.add(x & 0xff);
        return out;
    }
}
