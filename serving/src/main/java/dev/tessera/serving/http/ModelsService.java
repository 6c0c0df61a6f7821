package dev.tessera.serving.http;

import dev.tessera.serving.ServedModel;
import dev.tessera.serving.ServingContext;
import dev.tessera.serving.openai.ApiException;
import dev.tessera.serving.openai.ModelList;
import io.helidon.webserver.http.HttpRules;
import io.helidon.webserver.http.HttpService;
import io.helidon.webserver.http.ServerRequest;
import io.helidon.webserver.http.ServerResponse;

import java.util.List;

/** {@code GET /v1/models} and {@code GET /v1/models/{id}}: the one served model. */
public final class ModelsService implements HttpService {
    private final ServingContext context;

    public ModelsService(ServingContext context) {
        this.context = context;
    }

    @Override
    public void routing(HttpRules rules) {
        rules.get("/models", this::list)
                .any("/models", Responses::methodNotAllowed)
                .get("/models/{id}", this::retrieve)
                .any("/models/{id}", Responses::methodNotAllowed);
    }

    private void list(ServerRequest req, ServerResponse res) {
        Responses.guarded(res, () -> {
            ServedModel m = context.requireModel();
            Responses.json(res, 200, ModelList.of(List.of(ModelList.Model.of(m.name(), m.createdSeconds()))));
        });
    }

    private void retrieve(ServerRequest req, ServerResponse res) {
        Responses.guarded(res, () -> {
            ServedModel m = context.requireModel();
            String id = req.path().pathParameters().get("id");
            requireModelName(m, id);
            Responses.json(res, 200, ModelList.Model.of(m.name(), m.createdSeconds()));
        });
    }

    /** The request's {@code model} must be the served name: anything else is a 404, as OpenAI answers. */
    static void requireModelName(ServedModel m, String requested) {
        if (!m.name().equals(requested)) {
            throw ApiException.notFound("the model '" + requested + "' does not exist; this server serves '" + m.name() + "'",
                    "model", "model_not_found");
        }
    }
}
